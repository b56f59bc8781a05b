//! Draws one chart of every kind from made-up data, to see the look in one place.
//!
//! `cargo run --release --example chart_gallery -- out/gallery` writes `line`, `bars`,
//! `scatter`, `heatmap`, `clustered` and `dendrogram` as SVG and PNG, and `page.html` with all
//! of them inline.

use anyhow::Result;
use gandissect::chart::{
    Axis, Bar, BarChart, Dendrogram, DendrogramChart, Figure, HeatMap, Line, LineChart, Merge,
    Point, Scatter, page_font_css,
};
use std::path::PathBuf;

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or("out/gallery".into()));
    std::fs::create_dir_all(&out)?;
    let ks = [0.0, 2.0, 4.0, 8.0, 20.0, 30.0];
    let mean = [0.0, 9.2, 28.7, 49.2, 62.7, 66.2];
    let ci = [0.0, 1.6, 4.8, 8.0, 10.0, 10.8];
    let by_effect = [0.0, 17.4, 34.5, 56.7, 75.4, 80.3];
    let pts = |v: &[f64]| {
        ks.iter()
            .copied()
            .zip(v.iter().copied())
            .collect::<Vec<_>>()
    };
    let lo: Vec<f64> = mean.iter().zip(ci).map(|(m, c)| m - c).collect();
    let hi: Vec<f64> = mean.iter().zip(ci).map(|(m, c)| m + c).collect();
    let line = LineChart::new(
        "Tree pixels removed by zeroing the top units at layer4",
        Axis::linear("units zeroed (k)"),
        Axis::linear("tree pixels removed (%)"),
    )
    .line(Line::new("top units by IoU", &pts(&mean)).interval(&lo, &hi, "99% interval"))
    .line(Line::new("top units by effect", &pts(&by_effect)))
    .reference("half of the trees", 50.0)
    .note("1000 images")
    .render()?;

    let contexts = [
        ("window", 4.31, 1.2),
        ("door", 1.44, 0.4),
        ("roof", 1.05, 0.3),
        ("building", 0.93, 0.2),
        ("grass", 0.82, 0.1),
        ("tree", 0.63, 0.1),
        ("sky", 0.07, 0.05),
        ("cloud", -0.12, 0.08),
    ];
    let mut bars = BarChart::new(
        "Door pixels added per cell by what the cell showed",
        "context",
        Axis::linear("door pixels added per cell"),
    )
    .interval_label("99% interval of the mean");
    for (name, m, h) in contexts {
        bars = bars.bar(Bar::new(name, m).interval(m - h, m + h));
    }
    let bars = bars.render()?;

    let scatter = Scatter::new(
        "conv5_3: class selectivity against importance",
        Axis::linear("class selectivity index"),
        Axis::linear("accuracy drop when ablated alone (fraction of images)"),
    )
    .points((0..128).map(|u| {
        let s = ((u * 37) % 100) as f64 / 100.0;
        let i = (s * s * 0.02 + ((u * 13) % 7) as f64 * 0.001).max(0.0);
        let p = Point::new(s, i);
        if u % 41 == 0 {
            p.label(&format!("unit {u}"))
        } else {
            p
        }
    }))
    .note("128 units")
    .note("Spearman ρ = 0.180")
    .render()?;

    let names: Vec<String> = ["sky", "tree", "grass", "water", "building", "door"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let values: Vec<Vec<f64>> = (0..6)
        .map(|r| {
            (0..6)
                .map(|c| {
                    if r == c {
                        1.0
                    } else {
                        1.0 - ((r as f64 - c as f64).abs() / 5.0) - 0.4
                    }
                })
                .collect()
        })
        .collect();
    let heat = HeatMap::new(
        "Similarity of concept units",
        &names,
        &names,
        values.clone(),
    )
    .diverging()
    .labels("correlation", "concept", "concept")
    .show_values()
    .render()?;
    let tree = Dendrogram::new(
        6,
        vec![
            Merge {
                a: 4,
                b: 5,
                height: 0.2,
            },
            Merge {
                a: 1,
                b: 2,
                height: 0.35,
            },
            Merge {
                a: 0,
                b: 3,
                height: 0.6,
            },
            Merge {
                a: 7,
                b: 8,
                height: 0.8,
            },
            Merge {
                a: 6,
                b: 9,
                height: 1.1,
            },
        ],
    )?;
    let clustered = HeatMap::new("Concepts clustered by unit overlap", &names, &names, values)
        .labels("IoU", "concept", "concept")
        .range(0.0, 1.0)
        .row_tree(tree.clone())
        .column_tree(tree.clone())
        .render()?;
    let dendrogram = DendrogramChart::new(
        "Concepts clustered by unit overlap",
        tree,
        &names,
        "distance (1 − r)",
    )
    .render()?;

    let all: Vec<(&str, &Figure)> = vec![
        ("line", &line),
        ("bars", &bars),
        ("scatter", &scatter),
        ("heatmap", &heat),
        ("clustered", &clustered),
        ("dendrogram", &dendrogram),
    ];
    for (name, fig) in &all {
        fig.save(&out.join(name))?;
    }
    let figs: Vec<&Figure> = all.iter().map(|(_, f)| *f).collect();
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Chart gallery</title>{}</head><body>",
        page_font_css(&figs, "")?
    );
    for f in &figs {
        page.push_str(&f.inline_svg());
    }
    page.push_str("</body></html>\n");
    std::fs::write(out.join("page.html"), page)?;
    println!("wrote {} charts to {}", all.len(), out.display());
    Ok(())
}
