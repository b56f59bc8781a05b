//! A folder of pictures as classifier input: PNG and JPEG files in name order (image id `i` =
//! the `i`-th file), centre-cropped to a square, resized to the classifier's input side and
//! converted to RGB, with a note of what was changed; and an optional label file
//! (`filename,class` per line) naming each picture's class.

use crate::dissect::ImageSource;
use crate::imageio::{from_rgb_images, open_image_limited};
use anyhow::{Context, Result, bail};
use image::imageops::FilterType;
use image::{ColorType, ImageDecoder, ImageReader};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// File extensions read as pictures (case-insensitive).
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Pictures of one folder, served at one square side.
#[derive(Debug)]
pub struct ImageFolder {
    /// The folder.
    pub dir: PathBuf,
    /// The pictures in name order.
    pub files: Vec<PathBuf>,
    /// The side every picture is served at.
    pub side: u32,
    /// What is done to the pictures on reading (resizing, cropping, mode conversion).
    pub notes: Vec<String>,
}

impl ImageFolder {
    /// Lists the PNG/JPEG pictures of `dir` and reads their headers; a missing folder, an empty
    /// one or an unreadable picture is an error naming it.
    pub fn open(dir: &Path, side: u32) -> Result<Self> {
        if side == 0 {
            bail!("the picture side must be positive");
        }
        if !dir.is_dir() {
            bail!(
                "image folder {} does not exist or is not a folder; give --images DIR with PNG or JPEG files",
                dir.display()
            );
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && has_image_extension(p))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "image folder {} holds no PNG or JPEG file (.png, .jpg, .jpeg); put the pictures there \
                 or leave out --images to use world scenes",
                dir.display()
            );
        }
        let (mut resized, mut cropped, mut converted) = (0usize, 0usize, 0usize);
        for f in &files {
            let (w, h, colour) = header(f)?;
            if w == 0 || h == 0 {
                bail!("{} is an empty picture ({w}×{h}); remove it", f.display());
            }
            if w != h {
                cropped += 1;
            }
            if w.min(h) != side {
                resized += 1;
            }
            if colour != ColorType::Rgb8 {
                converted += 1;
            }
        }
        let n = files.len();
        let mut notes = Vec::new();
        if cropped > 0 {
            notes.push(format!(
                "{cropped} of {n} pictures are not square; their centre square is used"
            ));
        }
        if resized > 0 {
            notes.push(format!(
                "{resized} of {n} pictures resized (bilinear) to the classifier's input size {side}×{side}"
            ));
        }
        if converted > 0 {
            notes.push(format!(
                "{converted} of {n} pictures converted to 8-bit RGB (from grey, alpha or 16-bit modes)"
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            side,
            notes,
        })
    }

    /// File names (without the folder) in id order.
    pub fn names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Reads picture `id` as a square 8-bit RGB image of side [`Self::side`].
    pub fn read(&self, id: u64) -> Result<image::RgbImage> {
        let path = self.files.get(id as usize).with_context(|| {
            format!(
                "picture {id} requested but {} holds {} pictures",
                self.dir.display(),
                self.files.len()
            )
        })?;
        let img = open_image_limited(
            path,
            "picture",
            crate::imageio::DecodeLimits::for_use(self.side, self.side),
        )?;
        let (w, h) = (img.width(), img.height());
        let s = w.min(h);
        let img = img.crop_imm((w - s) / 2, (h - s) / 2, s, s);
        let img = if s == self.side {
            img
        } else {
            img.resize_exact(self.side, self.side, FilterType::Triangle)
        };
        Ok(img.to_rgb8())
    }
}

impl ImageSource for ImageFolder {
    fn len(&self) -> u64 {
        self.files.len() as u64
    }

    fn images(&self, ids: &[u64], device: Device) -> Result<Tensor> {
        let imgs = ids
            .iter()
            .map(|&i| self.read(i))
            .collect::<Result<Vec<_>>>()?;
        from_rgb_images(&imgs, device)
    }

    fn describe(&self) -> String {
        format!(
            "folder {} ({} pictures, first {}, last {})",
            self.dir.display(),
            self.files.len(),
            self.names().first().cloned().unwrap_or_default(),
            self.names().last().cloned().unwrap_or_default()
        )
    }
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn header(path: &Path) -> Result<(u32, u32, ColorType)> {
    let why = || {
        format!(
            "cannot read {} as a PNG or JPEG picture; remove or replace it",
            path.display()
        )
    };
    let file = crate::fsutil::open_regular(path, "picture")?;
    let decoder = ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .with_context(why)?
        .into_decoder()
        .with_context(why)?;
    let (w, h) = decoder.dimensions();
    Ok((w, h, decoder.color_type()))
}

/// Reads a label file: one `filename,class` line per picture (a first line `filename,class` is
/// a header and skipped; blank lines are skipped). Returns each picture's class index in
/// `folder` order, `None` for pictures without a line. Unknown file names, unknown class names
/// (the known ones are listed) and files given twice are errors.
pub fn read_labels(
    path: &Path,
    folder: &ImageFolder,
    classes: &[String],
) -> Result<Vec<Option<usize>>> {
    let text = crate::fsutil::read_text(path, "label file").with_context(|| {
        format!(
            "cannot read the label file {}; give a CSV with lines filename,class",
            path.display()
        )
    })?;
    let index: HashMap<String, usize> = folder
        .names()
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    let mut out = vec![None; folder.files.len()];
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((file, class)) = line.split_once(',') else {
            bail!(
                "{}:{}: expected 'filename,class', got '{line}'",
                path.display(),
                lineno + 1
            );
        };
        let (file, class) = (file.trim(), class.trim());
        if lineno == 0
            && file.eq_ignore_ascii_case("filename")
            && class.eq_ignore_ascii_case("class")
        {
            continue;
        }
        let Some(&i) = index.get(file) else {
            bail!(
                "{}:{}: '{file}' is not a picture of {}; name files as they are in the folder",
                path.display(),
                lineno + 1,
                folder.dir.display()
            );
        };
        let Some(c) = classes.iter().position(|k| k == class) else {
            bail!(
                "{}:{}: unknown class '{class}'; this classifier's classes are: {}",
                path.display(),
                lineno + 1,
                classes.join(", ")
            );
        };
        if out[i].replace(c).is_some() {
            bail!(
                "{}:{}: '{file}' is labelled twice; give each picture one line",
                path.display(),
                lineno + 1
            );
        }
    }
    if out.iter().all(Option::is_none) {
        bail!(
            "the label file {} labels none of the pictures; give lines filename,class",
            path.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;
    use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    fn scratch(name: &str) -> ScratchDir {
        ScratchDir::new(&format!("folder-{name}")).unwrap()
    }

    /// The test pictures in a folder of their own for each test (`name`), as tests run at once.
    fn pictures(name: &str) -> ScratchDir {
        let dir = scratch(name);
        // a: 40×30 RGBA (cropped, resized, converted); b: 32×32 grey (converted);
        // c: 32×32 RGB JPEG (kept); notes.txt is not a picture.
        RgbaImage::from_fn(40, 30, |x, _| {
            Rgba([if x < 20 { 0 } else { 255 }, 0, 0, 255])
        })
        .save(dir.join("a.png"))
        .unwrap();
        GrayImage::from_pixel(32, 32, Luma([200]))
            .save(dir.join("b.PNG"))
            .unwrap();
        RgbImage::from_pixel(32, 32, Rgb([10, 200, 30]))
            .save(dir.join("c.jpg"))
            .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a picture").unwrap();
        dir
    }

    #[test]
    fn pictures_are_listed_cropped_resized_converted_and_noted() {
        let dir = pictures("pics-listed");
        let f = ImageFolder::open(&dir, 32).unwrap();
        assert_eq!(f.names(), ["a.png", "b.PNG", "c.jpg"]);
        let notes = f.notes.join("\n");
        assert!(notes.contains("1 of 3 pictures are not square"), "{notes}");
        assert!(notes.contains("1 of 3 pictures resized"), "{notes}");
        assert!(notes.contains("2 of 3 pictures converted"), "{notes}");
        let x = f.images(&[0, 1, 2], Device::Cpu).unwrap();
        assert_eq!(x.size(), [3, 3, 32, 32]);
        assert!(f64::try_from(x.abs().max()).unwrap() <= 1.0);
        // the grey picture has equal channels; the cropped one keeps its left/right halves
        let grey = x.get(1);
        assert!(f64::try_from((grey.get(0) - grey.get(2)).abs().max()).unwrap() < 1e-6);
        let red = x.get(0).get(0);
        assert!(f64::try_from(red.get(16).get(2)).unwrap() < -0.9);
        assert!(f64::try_from(red.get(16).get(29)).unwrap() > 0.9);
        assert!(f.images(&[3], Device::Cpu).is_err());
    }

    #[test]
    fn missing_and_empty_folders_are_explained() {
        let err = ImageFolder::open(Path::new("/nonexistent/pictures"), 32).unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
        let dir = scratch("empty");
        std::fs::write(dir.join("readme.txt"), "x").unwrap();
        let err = ImageFolder::open(&dir, 32).unwrap_err();
        assert!(
            format!("{err:#}").contains("holds no PNG or JPEG"),
            "{err:#}"
        );
        std::fs::write(dir.join("broken.png"), "not png data").unwrap();
        let err = ImageFolder::open(&dir, 32).unwrap_err();
        assert!(format!("{err:#}").contains("broken.png"), "{err:#}");
    }

    #[test]
    fn labels_map_files_to_classes_and_bad_lines_are_refused() {
        let dir = pictures("pics-labels");
        let f = ImageFolder::open(&dir, 32).unwrap();
        let classes: Vec<String> = ["beach", "forest"].iter().map(|s| s.to_string()).collect();
        let csv = dir.join("labels.csv");
        std::fs::write(&csv, "filename,class\nc.jpg,forest\n\na.png, beach\n").unwrap();
        assert_eq!(
            read_labels(&csv, &f, &classes).unwrap(),
            [Some(0), None, Some(1)]
        );
        let cases = [
            (
                "a.png,desert\n",
                "unknown class 'desert'; this classifier's classes are: beach, forest",
            ),
            ("z.png,beach\n", "'z.png' is not a picture"),
            ("a.png,beach\na.png,forest\n", "labelled twice"),
            ("a.png beach\n", "expected 'filename,class'"),
            ("filename,class\n", "labels none"),
        ];
        for (text, want) in cases {
            std::fs::write(&csv, text).unwrap();
            let err = read_labels(&csv, &f, &classes).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{text:?}: {err:#}");
        }
    }
}
