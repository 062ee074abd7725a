#!/usr/bin/env python3
"""A stateful fake Immich server for the tests.

Immich cannot run here (its server is on no package registry and needs
Postgres with a vector extension), so this serves the part of its API that
Shoebox and the official `@immich/cli` use, as Immich's published OpenAPI
specification (open-api/immich-openapi-specs.json) gives it: paths, methods,
status codes, request and response shapes, API-key permissions, and the
differences between major versions 2 and 3 (v3 dropped `deviceAssetId` and
`deviceId` from uploads and refuses them; v2 requires them). The suite runs
the official client against it (tests/cli/immich.rs), so what the fake
accepts is what the real client sends.

State lives in memory. `GET /_fake/state` (no key) returns it for the
tests: every asset with its SHA-1, size, trash flag and albums, every
album, and the bytes of asset data received.

Usage: server.py PORT --version 3.0.0 --key KEY [--permissions all]
                  [--max-upload BYTES] [--album-without-exif]
"""

import argparse
import base64
import hashlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IMAGE = {".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".gif", ".tif",
         ".tiff", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf",
         ".rw2", ".avif", ".jxl", ".bmp"}
VIDEO = {".mov", ".mp4", ".m4v", ".3gp", ".avi", ".mkv", ".mts", ".webm",
         ".mpg", ".wmv"}
SIDECAR = {".xmp"}

LOCK = threading.Lock()
STATE = {"assets": {}, "albums": {}, "received": 0, "uploads": 0}
ARGS = None


def ext(name):
    m = re.search(r"(\.[^./]+)$", name.lower())
    return m.group(1) if m else ""


def now_iso():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def asset_dto(a):
    return {
        "id": a["id"],
        "type": a["type"],
        "originalFileName": a["originalFileName"],
        "originalMimeType": "application/octet-stream",
        "checksum": a["checksum"],
        "fileCreatedAt": a["fileCreatedAt"],
        "fileModifiedAt": a["fileModifiedAt"],
        "localDateTime": a["fileCreatedAt"],
        "updatedAt": a["updatedAt"],
        "isFavorite": a["isFavorite"],
        "isArchived": False,
        "isTrashed": a["isTrashed"],
        "isOffline": False,
        "visibility": "timeline",
        "duration": "0:00:00.00000" if ARGS.major < 3 else 0,
        "livePhotoVideoId": a["livePhotoVideoId"],
        "hasMetadata": True,
        "ownerId": "owner-1",
        "deviceAssetId": a.get("deviceAssetId"),
        "deviceId": a.get("deviceId"),
        "exifInfo": {"fileSizeInByte": len(a["data"])},
        "people": [],
        "tags": [],
        "stack": None,
        "thumbhash": None,
        "duplicateId": None,
        "resized": True,
    }


def album_dto(al, with_assets):
    """An album as the API gives it; with `--album-without-exif`, its assets
    come without their EXIF details (file sizes), as some versions list them."""
    assets = [STATE["assets"][i] for i in al["assetIds"]
              if i in STATE["assets"] and not STATE["assets"][i]["isTrashed"]]
    out = {
        "id": al["id"],
        "albumName": al["albumName"],
        "description": "",
        "albumThumbnailAssetId": assets[0]["id"] if assets else None,
        "createdAt": al["createdAt"],
        "updatedAt": al["updatedAt"],
        "ownerId": "owner-1",
        "owner": {"id": "owner-1", "email": "me@example.com", "name": "Me"},
        "albumUsers": [],
        "shared": False,
        "hasSharedLink": False,
        "isActivityEnabled": True,
        "assetCount": len(assets),
        "assets": [album_asset(a) for a in assets] if with_assets else [],
        "order": "desc",
    }
    return out


def album_asset(a):
    dto = asset_dto(a)
    if ARGS.album_without_exif:
        dto.pop("exifInfo")
    return dto


def parse_multipart(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        return None
    boundary = b"--" + m.group(1).encode()
    fields, files = {}, {}
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        headers = head.decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', headers)
        if not name:
            continue
        filename = re.search(r'filename="([^"]*)"', headers)
        if filename:
            files[name.group(1)] = (filename.group(1), data)
        else:
            fields[name.group(1)] = data.decode("utf-8")
    return fields, files


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each answer leaves in one write, flushed when the request is done, and
    # without Nagle's delay: as a real server answers (unbuffered, a small
    # head and body written apart wait ~40 ms each for a delayed ACK).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    # -- answers ---------------------------------------------------------

    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_empty(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def error(self, status, message):
        names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                 404: "Not Found", 413: "Payload Too Large"}
        self.send_json(status, {"message": message, "error": names.get(status, ""),
                                "statusCode": status})

    # -- requests --------------------------------------------------------

    def body(self):
        return self.request_body

    def json_body(self):
        raw = self.body()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def allowed(self, permission):
        """True if the API key is valid and has `permission`; else answers."""
        if self.headers.get("x-api-key") != ARGS.key:
            self.error(401, "Invalid API key")
            return False
        perms = ARGS.permissions
        if permission and "all" not in perms and permission not in perms:
            self.error(403, f"Missing required permission: {permission}")
            return False
        return True

    def route(self, method):
        # Read whole before any answer, so that a refusal leaves the
        # connection ready for the next request.
        n = int(self.headers.get("Content-Length") or 0)
        self.request_body = self.rfile.read(n) if n else b""
        path = self.path.split("?", 1)[0]
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        if path == "/_fake/state" and method == "GET":
            with LOCK:
                return self.send_json(200, fake_state())
        if path == "/.well-known/immich" and method == "GET":
            return self.send_json(200, {"api": {"endpoint": "/api"}})
        if path == "/api/server/version" and method == "GET":
            return self.send_json(200, {"major": ARGS.major, "minor": ARGS.minor,
                                        "patch": ARGS.patch})
        if path == "/api/server/ping" and method == "GET":
            return self.send_json(200, {"res": "pong"})
        if path == "/api/server/media-types" and method == "GET":
            return self.send_json(200, {"image": sorted(IMAGE), "video": sorted(VIDEO),
                                        "sidecar": sorted(SIDECAR)})
        if path == "/api/users/me" and method == "GET":
            if self.allowed("user.read"):
                self.send_json(200, {"id": "owner-1", "email": "me@example.com",
                                     "name": "Me", "isAdmin": True})
            return
        if path == "/api/api-keys/me" and method == "GET":
            if self.allowed(None):
                self.send_json(200, {"id": "key-1", "name": "shoebox",
                                     "createdAt": "2026-01-01T00:00:00.000Z",
                                     "updatedAt": "2026-01-01T00:00:00.000Z",
                                     "permissions": ARGS.permissions})
            return
        if path == "/api/assets/bulk-upload-check" and method == "POST":
            return self.bulk_upload_check()
        if path == "/api/assets" and method == "POST":
            return self.upload()
        if path == "/api/assets" and method == "DELETE":
            return self.delete_assets()
        if path == "/api/assets/copy" and method == "PUT":
            return self.copy_asset()
        if path == "/api/trash/restore/assets" and method == "POST":
            return self.restore()
        m = re.fullmatch(r"/api/assets/([0-9a-f-]+)(/original)?", path)
        if m and method == "GET":
            return self.get_asset(m.group(1), bool(m.group(2)))
        if m and not m.group(2) and method == "PUT":
            return self.update_asset(m.group(1))
        if path == "/api/albums" and method == "GET":
            if self.allowed("album.read"):
                with LOCK:
                    self.send_json(200, [album_dto(a, False)
                                         for a in STATE["albums"].values()])
            return
        if path == "/api/albums" and method == "POST":
            return self.create_album()
        m = re.fullmatch(r"/api/albums/([0-9a-f-]+)(/assets)?", path)
        if m and not m.group(2) and method == "GET":
            if self.allowed("album.read"):
                with LOCK:
                    al = STATE["albums"].get(m.group(1))
                    if al is None:
                        return self.error(400, "Album not found")
                    self.send_json(200, album_dto(al, "withoutAssets=true" not in query))
            return
        if m and m.group(2) and method in ("PUT", "DELETE"):
            return self.album_assets(m.group(1), method == "PUT")
        self.error(404, f"Cannot {method} {path}")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    # -- assets ------------------------------------------------------------

    def bulk_upload_check(self):
        if not self.allowed("asset.upload"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict) or not isinstance(dto.get("assets"), list):
            return self.error(400, "assets must be an array")
        results = []
        with LOCK:
            for item in dto["assets"]:
                checksum = normalize_checksum(item.get("checksum", ""))
                found = find_by_checksum(checksum)
                if found is None:
                    results.append({"id": item.get("id"), "action": "accept"})
                else:
                    results.append({"id": item.get("id"), "action": "reject",
                                    "reason": "duplicate", "assetId": found["id"],
                                    "isTrashed": found["isTrashed"]})
        self.send_json(200, {"results": results})

    def upload(self):
        if not self.allowed("asset.upload"):
            return
        n = int(self.headers.get("Content-Length") or 0)
        if ARGS.max_upload and n > ARGS.max_upload:
            return self.error(413, "request entity too large")
        parsed = parse_multipart(self.body(), self.headers.get("Content-Type", ""))
        if parsed is None:
            return self.error(400, "Multipart: Boundary not found")
        fields, files = parsed
        errors = []
        if ARGS.major < 3:
            for f in ("deviceAssetId", "deviceId"):
                if not fields.get(f):
                    errors.append(f"{f} should not be empty")
        else:
            for f in ("deviceAssetId", "deviceId"):
                if f in fields:
                    errors.append(f"property {f} should not exist")
        for f in ("fileCreatedAt", "fileModifiedAt"):
            if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", fields.get(f, "")):
                errors.append(f"{f} must be a Date instance")
        if "assetData" not in files:
            errors.append("assetData is required")
        if errors:
            return self.error(400, errors)
        filename, data = files["assetData"]
        filename = fields.get("filename") or filename
        kind = ext(filename)
        if kind not in IMAGE and kind not in VIDEO:
            return self.error(400, f"Unsupported file type {filename}")
        checksum = base64.b64encode(hashlib.sha1(data).digest()).decode()
        header = self.headers.get("x-immich-checksum")
        if header and normalize_checksum(header) != checksum:
            return self.error(400, "The checksum header does not match the file")
        with LOCK:
            STATE["received"] += len(data)
            found = find_by_checksum(checksum)
            if found is not None:
                return self.send_json(200, {"id": found["id"], "status": "duplicate"})
            live = fields.get("livePhotoVideoId")
            if live and live not in STATE["assets"]:
                return self.error(400, "livePhotoVideoId is not an asset")
            a = {
                "id": str(uuid.uuid4()),
                "type": "VIDEO" if kind in VIDEO else "IMAGE",
                "originalFileName": filename,
                "checksum": checksum,
                "data": data,
                "fileCreatedAt": fields["fileCreatedAt"],
                "fileModifiedAt": fields["fileModifiedAt"],
                "updatedAt": now_iso(),
                "isFavorite": fields.get("isFavorite") == "true",
                "isTrashed": False,
                "livePhotoVideoId": live or None,
                "deviceAssetId": fields.get("deviceAssetId"),
                "deviceId": fields.get("deviceId"),
                "sidecar": files["sidecarData"][1].decode("utf-8", "replace")
                if "sidecarData" in files else None,
            }
            STATE["assets"][a["id"]] = a
            STATE["uploads"] += 1
        self.send_json(201, {"id": a["id"], "status": "created"})

    def get_asset(self, asset_id, original):
        if not self.allowed("asset.download" if original else "asset.read"):
            return
        with LOCK:
            a = STATE["assets"].get(asset_id)
            if a is None:
                return self.error(400, "Not found or no asset.read access")
            if not original:
                return self.send_json(200, asset_dto(a))
            data = a["data"]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def update_asset(self, asset_id):
        if not self.allowed("asset.update"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict):
            return self.error(400, "body must be an object")
        with LOCK:
            a = STATE["assets"].get(asset_id)
            if a is None:
                return self.error(400, "Not found or no asset.update access")
            if "livePhotoVideoId" in dto:
                video = STATE["assets"].get(dto["livePhotoVideoId"])
                if dto["livePhotoVideoId"] is not None and (
                        video is None or video["type"] != "VIDEO"):
                    return self.error(400, "livePhotoVideoId must be a video asset")
                a["livePhotoVideoId"] = dto["livePhotoVideoId"]
            if "isFavorite" in dto:
                a["isFavorite"] = bool(dto["isFavorite"])
            a["updatedAt"] = now_iso()
            self.send_json(200, asset_dto(a))

    def delete_assets(self):
        if not self.allowed("asset.delete"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict) or not isinstance(dto.get("ids"), list):
            return self.error(400, "ids must be an array")
        with LOCK:
            for i in dto["ids"]:
                if i not in STATE["assets"]:
                    return self.error(400, "Not found or no asset.delete access")
            for i in dto["ids"]:
                if dto.get("force"):
                    del STATE["assets"][i]
                    for al in STATE["albums"].values():
                        if i in al["assetIds"]:
                            al["assetIds"].remove(i)
                else:
                    STATE["assets"][i]["isTrashed"] = True
        self.send_empty(204)

    def restore(self):
        if not self.allowed("asset.delete"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict) or not isinstance(dto.get("ids"), list):
            return self.error(400, "ids must be an array")
        count = 0
        with LOCK:
            for i in dto["ids"]:
                a = STATE["assets"].get(i)
                if a is not None and a["isTrashed"]:
                    a["isTrashed"] = False
                    count += 1
        self.send_json(200, {"count": count})

    def copy_asset(self):
        if not self.allowed("asset.copy"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict):
            return self.error(400, "body must be an object")
        with LOCK:
            src = STATE["assets"].get(dto.get("sourceId"))
            dst = STATE["assets"].get(dto.get("targetId"))
            if src is None or dst is None:
                return self.error(400, "Both assets must exist")
            if dto.get("albums", True):
                for al in STATE["albums"].values():
                    if src["id"] in al["assetIds"] and dst["id"] not in al["assetIds"]:
                        al["assetIds"].append(dst["id"])
            if dto.get("favorite", True):
                dst["isFavorite"] = src["isFavorite"]
            if dto.get("sidecar", True) and src.get("sidecar") and not dst.get("sidecar"):
                dst["sidecar"] = src["sidecar"]
        self.send_empty(204)

    # -- albums ------------------------------------------------------------

    def create_album(self):
        if not self.allowed("album.create"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict) or not isinstance(dto.get("albumName"), str):
            return self.error(400, "albumName must be a string")
        with LOCK:
            al = {"id": str(uuid.uuid4()), "albumName": dto["albumName"],
                  "assetIds": [], "createdAt": now_iso(), "updatedAt": now_iso()}
            for i in dto.get("assetIds") or []:
                if i in STATE["assets"] and i not in al["assetIds"]:
                    al["assetIds"].append(i)
            STATE["albums"][al["id"]] = al
            self.send_json(201, album_dto(al, True))

    def album_assets(self, album_id, add):
        if not self.allowed("albumAsset.create" if add else "albumAsset.delete"):
            return
        dto = self.json_body()
        if not isinstance(dto, dict) or not isinstance(dto.get("ids"), list):
            return self.error(400, "ids must be an array")
        with LOCK:
            al = STATE["albums"].get(album_id)
            if al is None:
                return self.error(400, "Not found or no album access")
            out = []
            for i in dto["ids"]:
                if i not in STATE["assets"]:
                    out.append({"id": i, "success": False, "error": "not_found"})
                elif add and i in al["assetIds"]:
                    out.append({"id": i, "success": False, "error": "duplicate"})
                elif not add and i not in al["assetIds"]:
                    out.append({"id": i, "success": False, "error": "not_found"})
                else:
                    if add:
                        al["assetIds"].append(i)
                    else:
                        al["assetIds"].remove(i)
                    out.append({"id": i, "success": True})
            al["updatedAt"] = now_iso()
        self.send_json(200, out)


def normalize_checksum(text):
    """A SHA-1 given as hex (40 digits) or base64, as base64."""
    if re.fullmatch(r"[0-9a-fA-F]{40}", text):
        return base64.b64encode(bytes.fromhex(text)).decode()
    return text


def find_by_checksum(checksum):
    for a in STATE["assets"].values():
        if a["checksum"] == checksum:
            return a
    return None


def fake_state():
    albums_of = {}
    for al in STATE["albums"].values():
        for i in al["assetIds"]:
            albums_of.setdefault(i, []).append(al["albumName"])
    return {
        "assets": [{
            "id": a["id"],
            "originalFileName": a["originalFileName"],
            "sha1": a["checksum"],
            "size": len(a["data"]),
            "isTrashed": a["isTrashed"],
            "albums": sorted(albums_of.get(a["id"], [])),
            "fileCreatedAt": a["fileCreatedAt"],
            "fileModifiedAt": a["fileModifiedAt"],
            "livePhotoVideoId": a["livePhotoVideoId"],
            "deviceAssetId": a.get("deviceAssetId"),
            "sidecar": a.get("sidecar"),
            "data": a["data"].hex(),
        } for a in STATE["assets"].values()],
        "albums": [{"id": al["id"], "albumName": al["albumName"],
                    "assetIds": list(al["assetIds"])}
                   for al in STATE["albums"].values()],
        "received": STATE["received"],
        "uploads": STATE["uploads"],
    }


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--version", default="3.0.0")
    p.add_argument("--key", required=True)
    p.add_argument("--permissions", default="all")
    p.add_argument("--max-upload", type=int, default=0)
    p.add_argument("--album-without-exif", action="store_true")
    ARGS = p.parse_args()
    ARGS.major, ARGS.minor, ARGS.patch = (int(x) for x in ARGS.version.split("."))
    ARGS.permissions = ARGS.permissions.split(",")
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
