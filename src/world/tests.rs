//! Behaviour of the whole world: determinism, label coverage, the door, window and roof rules,
//! class content and class balance, and the sample writer.

use super::concepts::*;
use super::*;

const W: i32 = SIZE as i32;

/// Labels a ground pixel may carry (what a building stands on).
const GROUND: [u8; 4] = [GRASS, SNOW, SAND, ROAD];

fn at(labels: &[u8], x: i32, y: i32) -> u8 {
    if (0..W).contains(&x) && (0..W).contains(&y) {
        labels[(y * W + x) as usize]
    } else {
        0
    }
}

/// 4-connected components of the pixels whose label is in `set`, as pixel lists.
fn components(labels: &[u8], set: &[u8]) -> Vec<Vec<(i32, i32)>> {
    let mut seen = vec![false; labels.len()];
    let mut out = Vec::new();
    for start in 0..labels.len() {
        if seen[start] || !set.contains(&labels[start]) {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut comp = Vec::new();
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % SIZE) as i32, (i / SIZE) as i32);
            comp.push((x, y));
            for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] {
                if (0..W).contains(&nx) && (0..W).contains(&ny) {
                    let j = (ny * W + nx) as usize;
                    if !seen[j] && set.contains(&labels[j]) {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        out.push(comp);
    }
    out
}

fn rows(comp: &[(i32, i32)]) -> (i32, i32) {
    (
        comp.iter().map(|p| p.1).min().unwrap(),
        comp.iter().map(|p| p.1).max().unwrap(),
    )
}

fn cols(comp: &[(i32, i32)]) -> (i32, i32) {
    (
        comp.iter().map(|p| p.0).min().unwrap(),
        comp.iter().map(|p| p.0).max().unwrap(),
    )
}

fn fraction(labels: &[u8], id: u8) -> f64 {
    labels.iter().filter(|&&l| l == id).count() as f64 / labels.len() as f64
}

fn has(labels: &[u8], id: u8) -> bool {
    labels.contains(&id)
}

/// Scenes of every class, `per_class` each, from seeds that no other test uses.
fn scenes_by_class(per_class: u64) -> Vec<Scene> {
    SceneClass::ALL
        .into_iter()
        .flat_map(|c| (0..per_class).map(move |s| render_class(10_000 + s, c)))
        .collect()
}

#[test]
fn same_seed_gives_same_bytes_and_seeds_differ() {
    for seed in [0, 1, 7, 12_345, u64::MAX] {
        assert_eq!(render(seed), render(seed));
    }
    let a = render(3);
    let b = render(4);
    assert_ne!(a.rgb, b.rgb);
    let c = render_class(3, SceneClass::Beach);
    let d = render_class(3, SceneClass::Forest);
    assert_ne!(c.labels, d.labels);
    assert_eq!(render(5), render_class(5, class_of(5)));
}

#[test]
fn every_pixel_has_a_concept_and_all_concepts_appear() {
    let mut seen = [false; 256];
    for seed in 0..300 {
        let s = render(seed);
        assert_eq!(s.labels.len(), SIZE * SIZE);
        assert_eq!(s.rgb.len(), SIZE * SIZE * 3);
        for &l in &s.labels {
            assert!((1..=MAX_CONCEPT).contains(&l), "seed {seed} has label {l}");
            seen[l as usize] = true;
        }
    }
    for id in 1..=MAX_CONCEPT {
        assert!(
            seen[id as usize],
            "{} never appears in 300 scenes",
            CONCEPTS[id as usize]
        );
    }
}

#[test]
fn doors_stand_on_the_ground_at_the_foot_of_a_wall() {
    let mut doors = 0;
    for s in scenes_by_class(40) {
        for door in components(&s.labels, &[DOOR]) {
            doors += 1;
            let (top, bottom) = rows(&door);
            let (left, right) = cols(&door);
            let ctx = format!(
                "seed {} ({}) door at x {left}..={right}, y {top}..={bottom}",
                s.seed, s.class
            );
            assert!((4..=7).contains(&(right - left + 1)), "{ctx}: width");
            assert!((6..=11).contains(&(bottom - top + 1)), "{ctx}: height");
            assert_eq!(
                door.len() as i32,
                (right - left + 1) * (bottom - top + 1),
                "{ctx}: not a rectangle"
            );
            for x in left..=right {
                let below = at(&s.labels, x, bottom + 1);
                assert!(
                    GROUND.contains(&below),
                    "{ctx}: {} below the door",
                    CONCEPTS[below as usize]
                );
            }
            // The wall continues on both sides down to the same bottom row, which is on the ground.
            for x in [left - 1, right + 1] {
                assert_eq!(
                    at(&s.labels, x, bottom),
                    BUILDING,
                    "{ctx}: no wall beside the door foot"
                );
                assert!(
                    GROUND.contains(&at(&s.labels, x, bottom + 1)),
                    "{ctx}: wall beside the door does not end on the ground"
                );
            }
            for y in top..=bottom {
                assert_eq!(
                    at(&s.labels, left - 1, y),
                    BUILDING,
                    "{ctx}: door not set in a wall"
                );
            }
        }
    }
    assert!(doors > 150, "only {doors} doors in 240 scenes");
}

#[test]
fn windows_sit_inside_walls_above_the_doors() {
    let mut windows = 0;
    for s in scenes_by_class(40) {
        let walls = components(&s.labels, &[BUILDING, WINDOW, DOOR]);
        for win in components(&s.labels, &[WINDOW]) {
            windows += 1;
            let (_, bottom) = rows(&win);
            let (left, right) = cols(&win);
            let ctx = format!(
                "seed {} ({}) window at x {left}..={right}, bottom {bottom}",
                s.seed, s.class
            );
            let mut on_wall = false;
            for &(x, y) in &win {
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] {
                    let n = at(&s.labels, nx, ny);
                    assert!(
                        [BUILDING, WINDOW, TREE].contains(&n),
                        "{ctx}: touches {}",
                        CONCEPTS[n as usize]
                    );
                    on_wall |= n == BUILDING;
                }
            }
            assert!(on_wall, "{ctx}: no wall around it");
            for x in left..=right {
                assert!(
                    !GROUND.contains(&at(&s.labels, x, bottom + 2)),
                    "{ctx}: touches the wall's bottom row"
                );
            }
            let wall = walls.iter().find(|w| w.contains(&win[0])).unwrap();
            for &(x, y) in wall {
                if at(&s.labels, x, y) == DOOR {
                    assert!(bottom < y, "{ctx}: not above the door top at row {y}");
                }
            }
        }
    }
    assert!(windows > 300, "only {windows} windows in 240 scenes");
}

#[test]
fn roofs_sit_on_walls_and_trees_occlude_walls() {
    let (mut roofs, mut on_wall, mut occluded) = (0, 0, 0);
    for s in scenes_by_class(40) {
        for roof in components(&s.labels, &[ROOF]) {
            roofs += 1;
            let below: Vec<u8> = roof.iter().map(|&(x, y)| at(&s.labels, x, y + 1)).collect();
            assert!(
                below.contains(&BUILDING) || below.contains(&TREE),
                "seed {}: a roof over no wall",
                s.seed
            );
            on_wall += usize::from(below.contains(&BUILDING));
        }
        // A tree in front of a wall: a run of tree pixels with wall on both ends.
        let row_has_occlusion = |y: i32| {
            let row: Vec<u8> = (0..W).map(|x| at(&s.labels, x, y)).collect();
            row.windows(3).any(|w| w[0] == BUILDING && w[1] == TREE)
                && row.windows(2).any(|w| w[0] == TREE && w[1] == BUILDING)
        };
        occluded += usize::from((0..W).any(row_has_occlusion));
    }
    assert!(roofs > 150);
    assert!(
        on_wall * 100 >= roofs * 95,
        "{on_wall} of {roofs} roofs rest on a visible wall"
    );
    assert!(
        occluded >= 10,
        "trees stand in front of walls in only {occluded} scenes"
    );
}

/// The tallest run, in any column, from the highest roof pixel to the lowest wall pixel.
fn building_height(labels: &[u8]) -> i32 {
    (0..W)
        .filter_map(|x| {
            let ys: Vec<i32> = (0..W)
                .filter(|&y| [ROOF, BUILDING, DOOR, WINDOW].contains(&at(labels, x, y)))
                .collect();
            Some(ys.last()? - ys.first()? + 1)
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn each_class_shows_its_defining_objects() {
    for s in scenes_by_class(50) {
        let l = &s.labels;
        let ctx = format!("seed {} ({})", s.seed, s.class);
        let buildings = components(l, &[BUILDING, DOOR, WINDOW])
            .into_iter()
            .filter(|c| c.len() >= 30)
            .count();
        let telling = match s.class.painted() {
            SceneClass::Forest => Some((SceneClass::ForestPath, ROAD)),
            SceneClass::Lakeside => Some((SceneClass::AlpineLake, SNOW)),
            SceneClass::Beach => Some((SceneClass::WoodedBeach, TREE)),
            _ => None,
        };
        if let Some((fine, concept)) = telling {
            let shown = l.iter().filter(|&&c| c == concept).count();
            assert_eq!(
                s.class == fine,
                shown >= FINE_MIN_PIXELS,
                "{ctx}: {shown} px"
            );
        }
        match s.class.painted() {
            SceneClass::Beach => {
                assert!(has(l, SAND) && has(l, WATER) && has(l, SUN), "{ctx}");
                assert!(!has(l, BUILDING) && !has(l, SNOW), "{ctx}");
            }
            SceneClass::Forest => {
                assert!(
                    fraction(l, TREE) > 0.3,
                    "{ctx}: tree {:.2}",
                    fraction(l, TREE)
                );
                assert!(
                    fraction(l, SKY) < 0.35,
                    "{ctx}: sky {:.2}",
                    fraction(l, SKY)
                );
                assert!(!has(l, BUILDING) && !has(l, WATER), "{ctx}");
            }
            SceneClass::Village => {
                assert!(buildings >= 2, "{ctx}: {buildings} buildings");
                assert!(has(l, ROAD) && has(l, GRASS) && has(l, ROOF), "{ctx}");
                assert!(
                    building_height(l) <= 24,
                    "{ctx}: a house {} rows tall",
                    building_height(l)
                );
            }
            SceneClass::SkiResort => {
                assert!(
                    fraction(l, SNOW) > 0.2,
                    "{ctx}: snow {:.2}",
                    fraction(l, SNOW)
                );
                assert!(
                    has(l, MOUNTAIN) && has(l, TREE) && has(l, BUILDING),
                    "{ctx}"
                );
                assert!(!has(l, GRASS), "{ctx}");
            }
            SceneClass::Church => {
                assert!(
                    has(l, DOOR) && has(l, WINDOW) && has(l, ROOF) && has(l, GRASS),
                    "{ctx}"
                );
                assert!(
                    building_height(l) >= 28,
                    "{ctx}: church only {} rows tall",
                    building_height(l)
                );
                assert!(buildings <= 2, "{ctx}: {buildings} buildings");
            }
            SceneClass::Lakeside => {
                assert!(
                    has(l, WATER) && has(l, MOUNTAIN) && has(l, GRASS) && has(l, TREE),
                    "{ctx}"
                );
                assert!(!has(l, SAND) && !has(l, BUILDING), "{ctx}");
            }
            fine => unreachable!("{fine} is not painted"),
        }
    }
}

#[test]
fn most_scenes_with_buildings_have_a_door() {
    let scenes = scenes_by_class(50);
    let with_buildings: Vec<&Scene> = scenes.iter().filter(|s| has(&s.labels, BUILDING)).collect();
    let with_doors = with_buildings
        .iter()
        .filter(|s| has(&s.labels, DOOR))
        .count();
    assert!(
        with_doors * 10 >= with_buildings.len() * 9,
        "{with_doors} of {}",
        with_buildings.len()
    );
}

#[test]
fn render_draws_painted_kinds_uniformly() {
    let mut counts = [0u32; 6];
    for seed in 0..3000 {
        counts[class_of(seed).painted().index()] += 1;
    }
    for c in counts {
        assert!((420..=580).contains(&c), "class counts {counts:?}");
    }
}

#[test]
fn write_samples_writes_images_maps_sheet_and_summary() {
    let dir = std::env::temp_dir().join(format!("gd-world-{}", std::process::id()));
    let summary = write_samples(3..9, &dir).unwrap();
    assert_eq!(summary.scenes, 6);
    assert_eq!(summary.classes.iter().map(|c| c.count).sum::<u64>(), 6);
    let total: f64 = summary.concepts.iter().map(|c| c.fraction).sum();
    assert!((total - 1.0).abs() < 1e-9, "fractions sum to {total}");
    let scene = render(5);
    let img = image::open(dir.join("images/5.png")).unwrap().to_rgb8();
    assert_eq!(img.as_raw(), &scene.rgb);
    let map = image::open(dir.join("labels/5.png")).unwrap().to_rgb8();
    assert_eq!(map, colorize(&scene.labels).unwrap());
    let sheet = image::open(dir.join("contact_sheet.png")).unwrap();
    assert!(sheet.width() >= 6 * 2 * SIZE as u32);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["scenes"], 6);
    assert_eq!(summary, super::summarize(3..9));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_get_clear_errors() {
    let err = write_samples(5..5, std::path::Path::new("unused")).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = colorize(&[1, 2, 3]).unwrap_err();
    assert!(err.to_string().contains("4096"), "{err}");
    let mut scene = render(0);
    scene.rgb.pop();
    assert!(scene.image().is_err());
}
