//! The world's concept label set: names, categories and display colours.

/// Concept names by id; id 0 is "-" (no label) and never appears in a rendered map.
pub const CONCEPTS: &[&str] = &[
    "-", "sky", "cloud", "sun", "mountain", "snow", "grass", "sand", "water", "tree", "building",
    "roof", "door", "window", "road",
];

/// Label id of "sky".
pub const SKY: u8 = 1;
/// Label id of "cloud".
pub const CLOUD: u8 = 2;
/// Label id of "sun".
pub const SUN: u8 = 3;
/// Label id of "mountain".
pub const MOUNTAIN: u8 = 4;
/// Label id of "snow" (snow fields and snow caps).
pub const SNOW: u8 = 5;
/// Label id of "grass".
pub const GRASS: u8 = 6;
/// Label id of "sand".
pub const SAND: u8 = 7;
/// Label id of "water" (lakes and sea).
pub const WATER: u8 = 8;
/// Label id of "tree" (canopy and trunk).
pub const TREE: u8 = 9;
/// Label id of "building" (the wall of a building).
pub const BUILDING: u8 = 10;
/// Label id of "roof" (roofs, spires).
pub const ROOF: u8 = 11;
/// Label id of "door".
pub const DOOR: u8 = 12;
/// Label id of "window".
pub const WINDOW: u8 = 13;
/// Label id of "road" (roads and paths).
pub const ROAD: u8 = 14;

/// The id of the largest concept; rendered maps hold ids in `1..=MAX_CONCEPT`.
pub const MAX_CONCEPT: u8 = ROAD;

/// The id of a concept name, or `None` for an unknown name (and for "-").
pub fn concept_id(name: &str) -> Option<u8> {
    CONCEPTS
        .iter()
        .position(|&c| c == name)
        .filter(|&i| i > 0)
        .map(|i| i as u8)
}

/// The category of a concept: "object", "part" or "material" ("-" for id 0 and unknown ids).
pub fn concept_category(id: u8) -> &'static str {
    match id {
        SKY | CLOUD | SUN | MOUNTAIN | TREE | BUILDING | WATER | ROAD => "object",
        ROOF | DOOR | WINDOW => "part",
        SNOW | GRASS | SAND => "material",
        _ => "-",
    }
}

/// Display colour of a concept in label maps (black for id 0 and unknown ids).
pub fn palette(id: u8) -> [u8; 3] {
    match id {
        SKY => [110, 180, 245],
        CLOUD => [185, 185, 215],
        SUN => [255, 215, 0],
        MOUNTAIN => [135, 85, 55],
        SNOW => [255, 255, 255],
        GRASS => [85, 200, 60],
        SAND => [235, 200, 120],
        WATER => [20, 60, 200],
        TREE => [0, 100, 25],
        BUILDING => [235, 135, 50],
        ROOF => [200, 20, 35],
        DOOR => [250, 0, 250],
        WINDOW => [0, 240, 240],
        ROAD => [90, 90, 90],
        _ => [0, 0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_categories_agree() {
        assert_eq!(CONCEPTS.len(), MAX_CONCEPT as usize + 1);
        for (i, name) in CONCEPTS.iter().enumerate().skip(1) {
            assert_eq!(concept_id(name), Some(i as u8));
            assert_ne!(concept_category(i as u8), "-", "{name} has no category");
        }
        assert_eq!(concept_id("-"), None);
        assert_eq!(concept_id("dragon"), None);
        assert_eq!(concept_category(DOOR), "part");
        assert_eq!(concept_category(SNOW), "material");
        assert_eq!(concept_category(ROAD), "object");
    }

    #[test]
    fn palette_colours_are_distinct() {
        for a in 0..=MAX_CONCEPT {
            for b in a + 1..=MAX_CONCEPT {
                assert_ne!(
                    palette(a),
                    palette(b),
                    "{} and {}",
                    CONCEPTS[a as usize],
                    CONCEPTS[b as usize]
                );
            }
        }
    }
}
