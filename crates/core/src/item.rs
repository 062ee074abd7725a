//! Items: a photo and its companions in one folder, which a user sees as
//! one thing. The members of an item share a stem: a Live Photo's still and
//! motion (`IMG_1234.HEIC`, `IMG_1234.MOV`), a RAW and its JPEG, an iOS
//! edit (`IMG_E1234.HEIC` of `IMG_1234`), and sidecars, named after the
//! stem (`IMG_1234.xmp`, `IMG_1234.AAE`) or after a member's full name
//! (`IMG_1234.CR2.xmp`, Google Takeout's `IMG_1234.jpg.json` and
//! `IMG_1234.jpg.supplemental-metadata.json`).
//!
//! The members of an item take one number together when their names are
//! taken in an album: `IMG_1234 (3).HEIC` with `IMG_1234 (3).MOV` and
//! `IMG_1234 (3).CR2.xmp`, never one number each. This module is pure: it
//! decides from the names alone. See docs/ARCHITECTURE.md.

/// One file's place in its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// What the item is known by, the same for all its members (folded to
    /// lower case: `img_1234` for `IMG_1234.HEIC` and `IMG_E1234.HEIC`).
    pub key: String,
    /// The part of the name a number follows: `IMG_1234`, `IMG_E1234`.
    pub stem: String,
    /// The rest of the name: `.HEIC`, `.CR2.xmp`, `.jpg.json`.
    pub tail: String,
}

/// What follows a member's full name in a sidecar named after it.
const SIDECAR_TAILS: &[&str] = &[".xmp", ".aae", ".json", ".supplemental-metadata.json"];

/// The shortest cut of Takeout's `.supplemental-metadata.json` it writes
/// when a name would be too long (`.supplemental-metad.json`, `.supp.json`).
const MIN_SUPPLEMENTAL: usize = 4;

/// The stem and tail of a name on its own: up to its last dot.
fn split_plain(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// True when `rest` (what follows a member's full name) makes a sidecar.
fn is_sidecar_tail(rest: &str) -> bool {
    let lower = rest.to_ascii_lowercase();
    if SIDECAR_TAILS.contains(&lower.as_str()) {
        return true;
    }
    let Some(cut) = lower
        .strip_prefix('.')
        .and_then(|r| r.strip_suffix(".json"))
    else {
        return false;
    };
    cut.len() >= MIN_SUPPLEMENTAL && "supplemental-metadata".starts_with(cut)
}

/// The iOS edit form `IMG_E1234` of a stem `IMG_1234`, as the original's
/// stem it would have: `Some("IMG_1234")`.
fn edited_original(stem: &str) -> Option<String> {
    let (head, digits) = stem.rsplit_once("_E")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{head}_{digits}"))
}

/// Takeout's JSON for the `n`-th photo of one name: `IMG_1.jpg(1).json`
/// (or `IMG_1.jpg.supplemental-metadata(1).json`, cut short or not) is
/// that of `IMG_1(1).jpg`. Returns the photo's name in that form, and the
/// length of the stem the JSON's name starts with (`IMG_1`).
fn takeout_numbered_photo(name: &str) -> Option<(String, usize)> {
    let rest = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".JSON"))?;
    let open = rest.strip_suffix(')')?.rfind('(')?;
    let n = &rest[open + 1..rest.len() - 1];
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut photo = &rest[..open];
    if let Some(dot) = photo.rfind('.') {
        let cut = photo[dot + 1..].to_ascii_lowercase();
        if cut.len() >= MIN_SUPPLEMENTAL && "supplemental-metadata".starts_with(&cut) {
            photo = &photo[..dot];
        }
    }
    let (stem, ext) = split_plain(photo);
    (!ext.is_empty()).then(|| (format!("{stem}({n}){ext}"), stem.len()))
}

/// Where `name` belongs, given the names of the other files in its folder.
pub(crate) fn member(name: &str, folder: &[&str]) -> Member {
    // Takeout's JSON of a numbered photo (its name holds the photo's
    // only before the number): a member of the photo's item.
    if let Some((photo, stem_len)) = takeout_numbered_photo(name)
        && let Some(other) = folder.iter().find(|o| o.eq_ignore_ascii_case(&photo))
    {
        return Member {
            key: member(other, folder).key,
            stem: name[..stem_len].to_string(),
            tail: name[stem_len..].to_string(),
        };
    }
    // A sidecar named after another file's full name.
    for other in folder {
        if name.len() > other.len()
            && name.is_char_boundary(other.len())
            && name[..other.len()].eq_ignore_ascii_case(other)
            && is_sidecar_tail(&name[other.len()..])
        {
            let (stem, _) = split_plain(other);
            let key = member(other, folder).key;
            return Member {
                key,
                stem: name[..stem.len()].to_string(),
                tail: name[stem.len()..].to_string(),
            };
        }
    }
    let (stem, tail) = split_plain(name);
    let original = edited_original(stem).filter(|orig| {
        folder
            .iter()
            .any(|o| split_plain(o).0.eq_ignore_ascii_case(orig))
    });
    Member {
        key: original.as_deref().unwrap_or(stem).to_lowercase(),
        stem: stem.to_string(),
        tail: tail.to_string(),
    }
}

impl Member {
    /// The member's name in the `n`-th item of its stem in an album: its
    /// own name for the first, `stem (n)tail` after. The stem is shortened
    /// (on a character boundary) where the name would pass 255 bytes.
    pub fn numbered(&self, n: u32) -> String {
        if n <= 1 {
            return format!("{}{}", self.stem, self.tail);
        }
        let suffix = format!(" ({n}){}", self.tail);
        let mut cut = 255usize.saturating_sub(suffix.len()).min(self.stem.len());
        while !self.stem.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{suffix}", &self.stem[..cut])
    }

    /// The number of `name` as a name of this member, if it is one.
    pub fn number_of(&self, name: &str) -> Option<u32> {
        if name == self.numbered(1) {
            return Some(1);
        }
        let inner = name.strip_suffix(self.tail.as_str())?.strip_suffix(')')?;
        let (stem, n) = inner.rsplit_once(" (")?;
        let n: u32 = n.parse().ok().filter(|n| *n >= 2)?;
        (self.stem.starts_with(stem) && name == self.numbered(n)).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, folder: &[&str]) -> (String, String, String) {
        let m = member(name, folder);
        (m.key, m.stem, m.tail)
    }

    fn t(key: &str, stem: &str, tail: &str) -> (String, String, String) {
        (key.into(), stem.into(), tail.into())
    }

    #[test]
    fn a_photo_and_its_companions_share_a_key() {
        let folder = [
            "IMG_1234.HEIC",
            "IMG_1234.MOV",
            "IMG_1234.AAE",
            "IMG_E1234.HEIC",
            "IMG_1234.HEIC.xmp",
            "IMG_0001.CR2",
            "IMG_0001.JPG",
            "IMG_0001.xmp",
            "IMG_0001.CR2.xmp",
            "PXL_1.jpg",
            "PXL_1.jpg.json",
            "PXL_1.jpg.supplemental-metadata.json",
            "PXL_1.jpg.supplemental-metad.json",
            "notes.json",
        ];
        let want = [
            t("img_1234", "IMG_1234", ".HEIC"),
            t("img_1234", "IMG_1234", ".MOV"),
            t("img_1234", "IMG_1234", ".AAE"),
            t("img_1234", "IMG_E1234", ".HEIC"),
            t("img_1234", "IMG_1234", ".HEIC.xmp"),
            t("img_0001", "IMG_0001", ".CR2"),
            t("img_0001", "IMG_0001", ".JPG"),
            t("img_0001", "IMG_0001", ".xmp"),
            t("img_0001", "IMG_0001", ".CR2.xmp"),
            t("pxl_1", "PXL_1", ".jpg"),
            t("pxl_1", "PXL_1", ".jpg.json"),
            t("pxl_1", "PXL_1", ".jpg.supplemental-metadata.json"),
            t("pxl_1", "PXL_1", ".jpg.supplemental-metad.json"),
            t("notes", "notes", ".json"),
        ];
        for (name, want) in folder.iter().zip(want) {
            assert_eq!(of(name, &folder), want, "{name}");
        }
    }

    #[test]
    fn takeout_s_json_of_a_numbered_photo_belongs_to_it() {
        let folder = [
            "IMG_1.jpg",
            "IMG_1.jpg.json",
            "IMG_1(1).jpg",
            "IMG_1.jpg(1).json",
            "IMG_2(3).HEIC",
            "IMG_2.HEIC.supplemental-metadata(3).json",
            "IMG_2.HEIC.supplemental-me(3).json",
            "IMG_9.jpg(1).json",
        ];
        let keys: Vec<String> = folder.iter().map(|n| member(n, &folder).key).collect();
        assert_eq!(
            keys,
            [
                "img_1",
                "img_1",
                "img_1(1)",
                "img_1(1)",
                "img_2(3)",
                "img_2(3)",
                "img_2(3)",
                // No photo of that form: an item of its own.
                "img_9.jpg(1)"
            ]
        );
        // Numbered after the stem its own name starts with.
        let json = member("IMG_1.jpg(1).json", &folder);
        assert_eq!(json.numbered(2), "IMG_1 (2).jpg(1).json");
        assert_eq!(json.number_of("IMG_1 (2).jpg(1).json"), Some(2));
    }

    #[test]
    fn an_edit_without_its_original_is_an_item_of_its_own() {
        assert_eq!(
            of("IMG_E1234.HEIC", &["IMG_E1234.HEIC"]),
            t("img_e1234", "IMG_E1234", ".HEIC")
        );
        assert_eq!(of("README", &[]), t("readme", "README", ""));
        assert_eq!(of(".profile", &[]), t(".profile", ".profile", ""));
    }

    #[test]
    fn members_take_one_number_with_the_sidecar_keeping_its_photo_s_name() {
        let folder = [
            "IMG_0001.CR2",
            "IMG_0001.CR2.xmp",
            "IMG_0001.jpg",
            "IMG_0001.jpg.json",
        ];
        let names: Vec<String> = folder
            .iter()
            .map(|n| member(n, &folder).numbered(2))
            .collect();
        assert_eq!(
            names,
            [
                "IMG_0001 (2).CR2",
                "IMG_0001 (2).CR2.xmp",
                "IMG_0001 (2).jpg",
                "IMG_0001 (2).jpg.json"
            ]
        );
        let m = member("IMG_0001.CR2.xmp", &folder);
        assert_eq!(m.number_of("IMG_0001 (2).CR2.xmp"), Some(2));
        assert_eq!(m.number_of("IMG_0001.CR2.xmp"), Some(1));
        assert_eq!(m.number_of("IMG_0001.CR2 (2).xmp"), None);
        assert_eq!(m.number_of("IMG_0002 (2).CR2.xmp"), None);
        for (name, want) in [
            ("archive.tar.gz", "archive.tar (3).gz"),
            ("README", "README (3)"),
            (".profile", ".profile (3)"),
        ] {
            assert_eq!(member(name, &[]).numbered(3), want);
        }
        let long = member(&format!("{}.jpg", "é".repeat(125)), &[]);
        let n = long.numbered(12);
        assert!(n.len() <= 255 && n.ends_with("é (12).jpg"), "{n}");
        assert_eq!(long.number_of(&n), Some(12));
    }
}
