//! The painting page in a real browser: Debian's Chromium, headless, driven over the DevTools
//! protocol against a server on the shipped models. It picks scene 129, selects tree, erases
//! over the left half with mouse events and checks the image shown, the reported tree pixels
//! and undo; then a door refused on the sky and forced, and a door accepted on a wall.
//!
//! Set `GANDISSECT_SCREENSHOTS=DIR` to keep the page's screenshots (before and after the
//! erasing) in DIR.

mod common;

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchMouseEventParams, DispatchMouseEventType, MouseButton,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use common::{chromium, require_shipped_models, scratch};
use futures::StreamExt;
use gandissect::edit::DissectionSource;
use gandissect::serve::{ProjectSource, ServeOptions, Server};
use image::RgbImage;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("{js}: {e}"))
}

/// Waits until the page has no request in flight and `cond` (a JS expression) holds.
async fn settle(page: &Page, cond: &str) {
    let js = format!("document.body.dataset.busy === '0' && ({cond})");
    let start = Instant::now();
    while !eval::<bool>(page, &js).await {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the page never reached {cond}; status: {}",
            eval::<String>(page, "document.querySelector('#status').textContent").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn mouse(page: &Page, kind: DispatchMouseEventType, x: f64, y: f64) {
    let e = DispatchMouseEventParams::builder()
        .r#type(kind)
        .x(x)
        .y(y)
        .button(MouseButton::Left)
        .buttons(1)
        .click_count(1)
        .build()
        .unwrap();
    page.execute(e).await.unwrap();
}

/// Drags the mouse through `points` (image pixels) on the canvas.
async fn drag(page: &Page, points: &[(f64, f64)]) {
    let [left, top, width]: [f64; 3] = eval(
        page,
        "(() => { const r = document.querySelector('#canvas').getBoundingClientRect(); \
         return [r.left, r.top, r.width]; })()",
    )
    .await;
    let side: f64 = eval(page, "state.project.image_size").await;
    let at = |(x, y): (f64, f64)| (left + x * width / side, top + y * width / side);
    let (x, y) = at(points[0]);
    mouse(page, DispatchMouseEventType::MouseMoved, x, y).await;
    mouse(page, DispatchMouseEventType::MousePressed, x, y).await;
    for &p in &points[1..] {
        let (x, y) = at(p);
        mouse(page, DispatchMouseEventType::MouseMoved, x, y).await;
    }
    let (x, y) = at(*points.last().unwrap());
    mouse(page, DispatchMouseEventType::MouseReleased, x, y).await;
}

async fn shown_image(page: &Page) -> Vec<u8> {
    use base64::Engine;
    let src: String = eval(page, "document.querySelector('#scene').src").await;
    let b64 = src
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn data_url_png(src: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = src
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// The lowest 8×8 cell (row, column) of a 64×64 segmentation overlay that is at least 60%
/// `colour` (`#rrggbb`).
fn lowest_wall_cell(overlay: &[u8], colour: &str) -> Option<(u32, u32)> {
    let img = image::load_from_memory(overlay).unwrap().to_rgba8();
    let v = u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap();
    let want = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
    let mut best = None;
    for cy in 0..8 {
        for cx in 0..8 {
            let n = (0..64)
                .filter(|i| {
                    let p = img.get_pixel(cx * 8 + i % 8, cy * 8 + i / 8);
                    p[3] > 0 && p.0[..3] == want
                })
                .count();
            if n * 10 >= 64 * 6 {
                best = Some((cy, cx));
            }
        }
    }
    best
}

fn rgb(png: &[u8]) -> RgbImage {
    image::load_from_memory(png).unwrap().to_rgb8()
}

/// Mean absolute channel difference of `a` and `b` over the pixels where `inside(x, y)`.
fn mean_diff(a: &RgbImage, b: &RgbImage, inside: impl Fn(u32, u32) -> bool) -> f64 {
    let (mut sum, mut n) = (0u64, 0u64);
    for (x, y, p) in a.enumerate_pixels() {
        if inside(x, y) {
            let q = b.get_pixel(x, y);
            sum +=
                p.0.iter()
                    .zip(q.0)
                    .map(|(u, v)| u64::from(u.abs_diff(v)))
                    .sum::<u64>();
            n += 3;
        }
    }
    sum as f64 / n.max(1) as f64
}

#[test]
fn a_person_erases_trees_and_paints_doors_in_a_real_browser() {
    require_shipped_models();
    let chromium = chromium();
    let mut o = ServeOptions::new(ProjectSource::Model {
        model: "world-proggan".into(),
        segmenter: "world-seg".into(),
        layers: vec!["layer4".into()],
        dissection: DissectionSource {
            cache_root: common::shipped_dissection_cache(),
            samples: common::SHIPPED_DISSECTION_SAMPLES,
            ..DissectionSource::default()
        },
    });
    o.addr = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(&o).unwrap();
    let url = server.url();
    let profile = scratch("serve-browser-profile");
    let shots = std::env::var_os("GANDISSECT_SCREENSHOTS").map(PathBuf::from);
    let shot_dir = scratch("serve-browser-shots");
    let shot_dir = shots.unwrap_or_else(|| shot_dir.to_path_buf());
    std::fs::create_dir_all(&shot_dir).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = BrowserConfig::builder()
            .chrome_executable(&chromium)
            .no_sandbox()
            .user_data_dir(&*profile)
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .viewport(Viewport {
                width: 1360,
                height: 820,
                ..Viewport::default()
            })
            .window_size(1360, 820)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let (mut browser, mut handler) = Browser::launch(config).await.unwrap();
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page(url.as_str()).await.unwrap();
        settle(
            &page,
            "document.querySelector('#scene').src.startsWith('data:')",
        )
        .await;

        // pick scene 129 with "go to id"
        click(&page, "#goto-id").await;
        page.find_element("#goto-id")
            .await
            .unwrap()
            .type_str("129")
            .await
            .unwrap();
        click(&page, "#goto").await;
        settle(&page, "state.seed === 129 && state.history.length === 1").await;
        let caption: String = eval(&page, "document.querySelector('#caption').textContent").await;
        assert!(caption.starts_with("scene 129"), "{caption}");
        let original = shown_image(&page).await;

        // select tree and the eraser, a large brush, and sweep the left half
        click(&page, "#concepts button[data-concept='tree']").await;
        click(&page, "#tool-remove").await;
        click(&page, "#strength button[data-k='20']").await;
        let size: f64 = eval(
            &page,
            "(() => { const s = document.querySelector('#size'); s.value = 12; \
             s.dispatchEvent(new Event('input')); return state.size; })()",
        )
        .await;
        assert_eq!(size, 12.0);
        let mut path = Vec::new();
        for (row, y) in (0..=64).step_by(4).enumerate() {
            let (a, b) = if row % 2 == 0 {
                (6.0, 26.0)
            } else {
                (26.0, 6.0)
            };
            path.push((a, y as f64));
            path.push((b, y as f64));
        }
        drag(&page, &path).await;
        settle(&page, "state.history.length === 2").await;
        let item: Value = eval(
            &page,
            "(() => { const li = document.querySelector('#strokes li'); \
             return {...li.dataset, text: li.textContent}; })()",
        )
        .await;
        assert_eq!(item["kind"], "removal", "{item}");
        let before: i64 = item["before"].as_str().unwrap().parse().unwrap();
        let after: i64 = item["after"].as_str().unwrap().parse().unwrap();
        assert!(
            before > 500 && after < before / 2,
            "tree pixels {before} → {after}: {item}"
        );
        let units: i64 = eval(&page, "document.querySelectorAll('#units figure').length").await;
        assert_eq!(units, 20, "the units panel shows the stroke's units");

        let edited = shown_image(&page).await;
        let (o_img, e_img) = (rgb(&original), rgb(&edited));
        let inside = mean_diff(&o_img, &e_img, |x, _| x < 32);
        let outside = mean_diff(&o_img, &e_img, |x, _| x >= 40);
        assert!(
            inside > 10.0 && inside > 8.0 * outside,
            "mean change inside the stroke {inside:.2}, outside {outside:.2}"
        );

        let after_shot = page
            .screenshot(ScreenshotParams::builder().build())
            .await
            .unwrap();
        click(&page, "#before").await;
        settle(&page, "state.before").await;
        assert_eq!(
            shown_image(&page).await,
            original,
            "before shows the original"
        );
        let before_shot = page
            .screenshot(ScreenshotParams::builder().build())
            .await
            .unwrap();
        click(&page, "#before").await;
        for (name, png) in [
            ("serve_before.png", &before_shot),
            ("serve_after.png", &after_shot),
        ] {
            let img = rgb(png);
            assert!(img.width() >= 1000, "{name} is {:?}", img.dimensions());
            std::fs::write(shot_dir.join(name), png).unwrap();
        }

        // undo brings back the original's bytes
        click(&page, "#undo").await;
        settle(&page, "state.at === 0").await;
        assert_eq!(shown_image(&page).await, original);

        // a door painted on the sky is refused, then forced
        click(&page, "#concepts button[data-concept='door']").await;
        click(&page, "#tool-add").await;
        drag(&page, &[(8.0, 4.0), (56.0, 4.0), (56.0, 10.0), (8.0, 10.0)]).await;
        settle(&page, "state.history.length === 2 && state.at === 1").await;
        let text: String = eval(&page, "document.querySelector('#strokes li').textContent").await;
        assert!(
            text.contains("rejected: door on") && text.contains("sky"),
            "{text}"
        );
        assert_eq!(
            shown_image(&page).await,
            original,
            "a refused stroke leaves the scene"
        );
        click(&page, "#strokes li button").await;
        settle(&page, "state.at === 2").await;
        let kept: String = eval(&page, "document.querySelector('#strokes li').dataset.kept").await;
        assert_eq!(kept, "1");
        assert_ne!(shown_image(&page).await, original, "a forced door is drawn");

        // a door painted on the lowest wall of scene 16 is accepted
        click(&page, "#goto-id").await;
        let _: String = eval(&page, "document.querySelector('#goto-id').value = ''").await;
        page.find_element("#goto-id")
            .await
            .unwrap()
            .type_str("16")
            .await
            .unwrap();
        click(&page, "#goto").await;
        settle(&page, "state.seed === 16 && state.history.length === 1").await;
        let seg: String = eval(&page, "state.history[0].result.segmentation").await;
        let building: String = eval(
            &page,
            "state.project.labels.find((l) => l.name === 'building').color",
        )
        .await;
        let (cy, cx) =
            lowest_wall_cell(&data_url_png(&seg), &building).expect("scene 16 has a wall");
        let (x0, y0) = (cx as f64 * 8.0, cy as f64 * 8.0);
        let size: f64 = eval(
            &page,
            "(() => { const s = document.querySelector('#size'); s.value = 3; \
             s.dispatchEvent(new Event('input')); return state.size; })()",
        )
        .await;
        assert_eq!(size, 3.0);
        drag(
            &page,
            &[
                (x0 + 3.0, y0 + 3.0),
                (x0 + 5.0, y0 + 3.0),
                (x0 + 5.0, y0 + 5.0),
                (x0 + 3.0, y0 + 5.0),
            ],
        )
        .await;
        settle(&page, "state.history.length === 2").await;
        let text: String = eval(&page, "document.querySelector('#strokes li').textContent").await;
        assert!(text.contains("accepted: door on building"), "{text}");

        browser.close().await.unwrap();
        let _ = browser.wait().await;
        events.abort();
    });
    server.stop();
}
