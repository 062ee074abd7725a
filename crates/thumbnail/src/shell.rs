//! Windows: the shell makes the thumbnail, as Explorer shows it
//! (`IShellItemImageFactory::GetImage`, thumbnails only): HEIC with the
//! HEIF extensions installed, videos' poster frames, RAW with the codecs
//! installed. The bitmap it gives is read into an image here. The shell
//! bounds its thumbnail providers itself (they run out of process).

use std::ffi::c_void;
use std::path::Path;

use image::{DynamicImage, RgbaImage};
use windows::Win32::Foundation::SIZE;
use windows::Win32::Graphics::Gdi::{
    BI_RGB, BITMAP, BITMAPINFO, BITMAPINFOHEADER, CreateCompatibleDC, DIB_RGB_COLORS, DeleteDC,
    DeleteObject, GetDIBits, GetObjectW, HBITMAP, HGDIOBJ,
};
use windows::Win32::System::Com::{COINIT_MULTITHREADED, CoInitializeEx};
use windows::Win32::UI::Shell::{
    IShellItemImageFactory, SHCreateItemFromParsingName, SIIGBF_BIGGERSIZEOK, SIIGBF_THUMBNAILONLY,
};
use windows::core::HSTRING;

pub(crate) fn make(source: &Path, _mime: &str, size: u32, _scratch: &Path) -> Option<DynamicImage> {
    let side = i32::try_from(size).ok()?;
    // SAFETY: COM calls on this thread after joining the multithreaded
    // apartment; the bitmap the shell returns is owned here and deleted.
    #[allow(unsafe_code)]
    unsafe {
        let _ = CoInitializeEx(None, COINIT_MULTITHREADED);
        let item: IShellItemImageFactory =
            SHCreateItemFromParsingName(&HSTRING::from(source), None)
                .inspect_err(|e| tracing::debug!("the shell cannot open {}: {e}", source.display()))
                .ok()?;
        let bitmap = item
            .GetImage(
                SIZE { cx: side, cy: side },
                SIIGBF_THUMBNAILONLY | SIIGBF_BIGGERSIZEOK,
            )
            .inspect_err(|e| {
                tracing::debug!("the shell has no thumbnail of {}: {e}", source.display())
            })
            .ok()?;
        let image = read(bitmap);
        let _ = DeleteObject(HGDIOBJ(bitmap.0));
        image
    }
}

/// A 32-bit top-down copy of the bitmap's pixels, as RGBA.
///
/// # Safety
///
/// `bitmap` must be a valid bitmap handle.
#[allow(unsafe_code)]
unsafe fn read(bitmap: HBITMAP) -> Option<DynamicImage> {
    let mut described = BITMAP::default();
    // SAFETY: `described` is a BITMAP, as large as said.
    let got = unsafe {
        GetObjectW(
            HGDIOBJ(bitmap.0),
            size_of::<BITMAP>() as i32,
            Some(std::ptr::from_mut(&mut described).cast::<c_void>()),
        )
    };
    let (width, height) = (described.bmWidth, described.bmHeight.abs());
    if got == 0 || width <= 0 || height <= 0 {
        return None;
    }
    let mut info = BITMAPINFO {
        bmiHeader: BITMAPINFOHEADER {
            biSize: size_of::<BITMAPINFOHEADER>() as u32,
            biWidth: width,
            biHeight: -height, // top-down rows
            biPlanes: 1,
            biBitCount: 32,
            biCompression: BI_RGB.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut pixels = vec![0u8; width as usize * height as usize * 4];
    // SAFETY: a memory DC for the copy, deleted after; `pixels` holds
    // `height` rows of `width` 32-bit pixels, as `info` says.
    let rows = unsafe {
        let dc = CreateCompatibleDC(None);
        let rows = GetDIBits(
            dc,
            bitmap,
            0,
            height as u32,
            Some(pixels.as_mut_ptr().cast()),
            &mut info,
            DIB_RGB_COLORS,
        );
        let _ = DeleteDC(dc);
        rows
    };
    if rows != height {
        return None;
    }
    // BGRA to RGBA; a bitmap whose alpha is all zero is opaque.
    let opaque = pixels.chunks_exact(4).all(|p| p[3] == 0);
    for p in pixels.chunks_exact_mut(4) {
        p.swap(0, 2);
        if opaque {
            p[3] = 255;
        }
    }
    RgbaImage::from_raw(width as u32, height as u32, pixels).map(DynamicImage::ImageRgba8)
}
