//! Scene classes: each is defined by the objects a scene of that class contains.

use serde::Serialize;

/// The kind of scene a seed renders; a class is recognisable by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneClass {
    /// Snow ground, snowy mountains, conifers and one or two chalets.
    SkiResort,
    /// One tall building with a spire, a door and windows, on grass.
    Church,
    /// Several houses along a street, a road, grass and trees.
    Village,
    /// Many trees on grass, little sky.
    Forest,
    /// A lake below mountains, with a grass shore and trees.
    Lakeside,
    /// Sand, the sea and the sun.
    Beach,
}

impl SceneClass {
    /// Every class, in id order.
    pub const ALL: [SceneClass; 6] = [
        SceneClass::SkiResort,
        SceneClass::Church,
        SceneClass::Village,
        SceneClass::Forest,
        SceneClass::Lakeside,
        SceneClass::Beach,
    ];

    /// The class's stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            SceneClass::SkiResort => "ski_resort",
            SceneClass::Church => "church",
            SceneClass::Village => "village",
            SceneClass::Forest => "forest",
            SceneClass::Lakeside => "lakeside",
            SceneClass::Beach => "beach",
        }
    }

    /// The class of a name as given by [`SceneClass::name`], or `None`.
    pub fn from_name(name: &str) -> Option<SceneClass> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The class's index in [`SceneClass::ALL`] (its id for classifiers).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for SceneClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indices_match() {
        for (i, class) in SceneClass::ALL.into_iter().enumerate() {
            assert_eq!(SceneClass::from_name(class.name()), Some(class));
            assert_eq!(class.index(), i);
        }
        assert_eq!(SceneClass::from_name("castle"), None);
    }
}
