//! A picture that compresses badly: MMS media over a test's size cap.

/// A 400×300 PNG of noise, about 350 KiB (the same bytes every time).
pub fn noise_png() -> &'static [u8] {
    static PHOTO: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PHOTO.get_or_init(|| {
        let mut state: u32 = 2_463_534_242;
        let picture = image::RgbImage::from_fn(400, 300, |_, _| {
            let mut byte = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            };
            image::Rgb([byte(), byte(), byte()])
        });
        let mut png = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut png, image::ImageFormat::Png).unwrap();
        png.into_inner()
    })
}
