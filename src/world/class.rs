//! Scene classes: each is defined by the objects a scene of that class contains.
//!
//! The world paints six kinds of scene ([`SceneClass::PAINTED`]). Three of them are split further
//! by what the finished picture shows, as fine-grained scene taxonomies do: a forest crossed by a
//! path, a lake under snowy peaks, a beach with a tree. A finer class differs from its painted
//! class by one concept only, so telling them apart hinges on seeing that concept.

use super::concepts::{ROAD, SNOW, TREE};
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
    /// A forest crossed by a path (at least [`FINE_MIN_PIXELS`] road pixels).
    ForestPath,
    /// A lakeside under snowy mountains (at least [`FINE_MIN_PIXELS`] snow pixels).
    AlpineLake,
    /// A beach with a tree on it (at least [`FINE_MIN_PIXELS`] tree pixels).
    WoodedBeach,
}

/// Pixels of its telling concept a scene needs to belong to a finer class; scenes showing less of
/// it keep their painted class.
pub const FINE_MIN_PIXELS: usize = 24;

impl SceneClass {
    /// Every class, in id order.
    pub const ALL: [SceneClass; 9] = [
        SceneClass::SkiResort,
        SceneClass::Church,
        SceneClass::Village,
        SceneClass::Forest,
        SceneClass::Lakeside,
        SceneClass::Beach,
        SceneClass::ForestPath,
        SceneClass::AlpineLake,
        SceneClass::WoodedBeach,
    ];

    /// The kinds of scene the world paints; every class is one of them or a finer class of one.
    pub const PAINTED: [SceneClass; 6] = [
        SceneClass::SkiResort,
        SceneClass::Church,
        SceneClass::Village,
        SceneClass::Forest,
        SceneClass::Lakeside,
        SceneClass::Beach,
    ];

    /// The finer classes: each differs from its painted kind by one concept.
    pub const FINE: [SceneClass; 3] = [
        SceneClass::ForestPath,
        SceneClass::AlpineLake,
        SceneClass::WoodedBeach,
    ];

    /// The concept that tells a finer class from its painted kind (road, snow, tree), or
    /// `None` for a painted class.
    pub fn telling_concept(self) -> Option<u8> {
        match self {
            SceneClass::ForestPath => Some(ROAD),
            SceneClass::AlpineLake => Some(SNOW),
            SceneClass::WoodedBeach => Some(TREE),
            _ => None,
        }
    }

    /// The painted kind a scene of this class is (itself for a painted class).
    pub fn painted(self) -> SceneClass {
        match self {
            SceneClass::ForestPath => SceneClass::Forest,
            SceneClass::AlpineLake => SceneClass::Lakeside,
            SceneClass::WoodedBeach => SceneClass::Beach,
            c => c,
        }
    }

    /// The class of a painted scene of kind `painted` whose concept map is `labels`: the finer
    /// class when the map shows at least [`FINE_MIN_PIXELS`] of its telling concept.
    pub fn of_content(painted: SceneClass, labels: &[u8]) -> SceneClass {
        let Some((fine, concept)) = Self::FINE
            .into_iter()
            .find(|f| f.painted() == painted.painted())
            .and_then(|f| f.telling_concept().map(|c| (f, c)))
        else {
            return painted.painted();
        };
        let shown = labels.iter().filter(|&&l| l == concept).count();
        if shown >= FINE_MIN_PIXELS {
            fine
        } else {
            painted.painted()
        }
    }

    /// The class's stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            SceneClass::SkiResort => "ski_resort",
            SceneClass::Church => "church",
            SceneClass::Village => "village",
            SceneClass::Forest => "forest",
            SceneClass::Lakeside => "lakeside",
            SceneClass::Beach => "beach",
            SceneClass::ForestPath => "forest_path",
            SceneClass::AlpineLake => "alpine_lake",
            SceneClass::WoodedBeach => "wooded_beach",
        }
    }

    /// For each world class in id order, the index in `classes` (a classifier's output names)
    /// that stands for it: its own name, else its painted kind's name (so a classifier of the six
    /// painted kinds reads a forest path as a forest). An error names a class with neither.
    pub fn outputs_in(classes: &[String]) -> anyhow::Result<Vec<i64>> {
        let find = |c: SceneClass| classes.iter().position(|n| n == c.name());
        Self::ALL
            .into_iter()
            .map(|c| {
                find(c).or_else(|| find(c.painted())).map(|i| i as i64).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the classifier's classes ({}) include neither the world class '{c}' nor \
                         its painted kind '{}'; world scenes need a classifier of the world's \
                         classes (or use pictures with a label file instead)",
                        classes.join(", "),
                        c.painted()
                    )
                })
            })
            .collect()
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

    #[test]
    fn finer_classes_follow_their_telling_concept() {
        let mut labels = vec![super::super::concepts::GRASS; 64 * 64];
        assert_eq!(
            SceneClass::of_content(SceneClass::Forest, &labels),
            SceneClass::Forest
        );
        labels[..FINE_MIN_PIXELS - 1].fill(ROAD);
        assert_eq!(
            SceneClass::of_content(SceneClass::Forest, &labels),
            SceneClass::Forest
        );
        labels[FINE_MIN_PIXELS - 1] = ROAD;
        assert_eq!(
            SceneClass::of_content(SceneClass::Forest, &labels),
            SceneClass::ForestPath
        );
        // Road makes no finer class of a village, nor snow of a forest.
        assert_eq!(
            SceneClass::of_content(SceneClass::Village, &labels),
            SceneClass::Village
        );
        labels.fill(SNOW);
        assert_eq!(
            SceneClass::of_content(SceneClass::Forest, &labels),
            SceneClass::Forest
        );
        assert_eq!(
            SceneClass::of_content(SceneClass::Lakeside, &labels),
            SceneClass::AlpineLake
        );
        for class in SceneClass::ALL {
            assert!(SceneClass::PAINTED.contains(&class.painted()));
        }
    }

    #[test]
    fn world_classes_map_to_a_classifiers_outputs() {
        let names = |v: &[SceneClass]| v.iter().map(|c| c.name().to_string()).collect::<Vec<_>>();
        let all = SceneClass::outputs_in(&names(&SceneClass::ALL)).unwrap();
        assert_eq!(all, (0..SceneClass::ALL.len() as i64).collect::<Vec<_>>());
        // A classifier of the painted kinds only, in another order.
        let mut painted = SceneClass::PAINTED.to_vec();
        painted.reverse();
        let map = SceneClass::outputs_in(&names(&painted)).unwrap();
        let beach = painted
            .iter()
            .position(|&c| c == SceneClass::Beach)
            .unwrap() as i64;
        assert_eq!(map[SceneClass::Beach.index()], beach);
        assert_eq!(map[SceneClass::WoodedBeach.index()], beach);
        let err = SceneClass::outputs_in(&names(&[SceneClass::Beach, SceneClass::Forest]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'ski_resort'") && err.contains("beach, forest"),
            "{err}"
        );
    }
}
