//! The painting server's API over loopback HTTP, on a tiny random generator and segmenter
//! dissected inside the test: projects and layers, scenes, painting against the library's own
//! painter, bad requests (a 4xx with a one-line reason, and the server keeps serving),
//! concurrent clients, a stalled client, and a download that replays with `gandissect batch`.

mod common;

use common::{Scratch, gandissect, scratch, tiny_generator, tiny_segmenter};
use gandissect::dissect::{DissectOptions, Outcome, Shard, Sketch, run};
use gandissect::edit::{Action, DissectionSource, PlanOptions, ScenePlan, Session, SessionOptions};
use gandissect::serve::mask::MaskBits;
use gandissect::serve::{ProjectSource, ServeOptions, Server};
use image::RgbImage;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::Device;

/// A random 16×16 generator, a random world segmenter and a dissection of both at layer2 and
/// layer4 (IoU cut-off 0, so every concept the segmenter draws has units).
struct Fixture {
    _dir: Scratch,
    model: String,
    segmenter: String,
    dissection: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let dir = scratch(name);
    let model = tiny_generator(&dir, "g.safetensors", 1);
    let segmenter = tiny_segmenter(&dir, None);
    let dissection = dir.join("data/tiny");
    let mut o = DissectOptions::new(&model, &["layer4", "layer2"], &segmenter, 48, &dissection);
    o.seg_size = 16;
    o.batch = 16;
    o.topk = 4;
    o.miniou = 0.0;
    o.report_images = 2;
    o.shard = Shard::default();
    o.sketch = Sketch {
        resolution: 1 << 14,
        sample_floor: None,
    };
    assert!(matches!(run(&o).unwrap(), Outcome::Finished(_)));
    Fixture {
        _dir: dir,
        model,
        segmenter,
        dissection,
    }
}

fn options(f: &Fixture) -> ServeOptions {
    let mut o = ServeOptions::new(ProjectSource::Model {
        model: f.model.clone(),
        segmenter: f.segmenter.clone(),
        layers: vec!["layer4".into(), "layer2".into()],
        dissection: DissectionSource {
            dir: Some(f.dissection.clone()),
            ..DissectionSource::default()
        },
    });
    o.addr = "127.0.0.1:0".parse().unwrap();
    o.limits.max_id = 1000;
    o.max_strokes = 8;
    o
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn get(a: &ureq::Agent, url: &str) -> (u16, Vec<u8>) {
    let mut r = a.get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
}

fn post(a: &ureq::Agent, url: &str, body: &str) -> (u16, Vec<u8>) {
    let mut r = a
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn png_of(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

fn data_url_bytes(v: &Value) -> Vec<u8> {
    use base64::Engine;
    let s = v.as_str().unwrap();
    let b64 = s
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// The left half (`x < side/2`) of a `side × side` image.
fn left_half(side: u32) -> (MaskBits, Vec<bool>) {
    let on: Vec<bool> = (0..side * side).map(|i| i % side < side / 2).collect();
    (MaskBits::pack(side, side, &on), on)
}

fn stroke(op: &str, concept: &str, mask: &MaskBits, k: usize) -> Value {
    json!({"op": op, "concept": concept, "mask": mask, "k": k})
}

/// The concepts with units at layer4, most units first.
fn palette(server: &Server) -> Vec<String> {
    let p = &server.projects()[0];
    p.layer("layer4")
        .unwrap()
        .concepts
        .iter()
        .map(|c| c.concept.clone())
        .collect()
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn projects_scenes_and_strokes_match_the_library_painter() {
    let f = fixture("serve-api");
    let server = Server::start(&options(&f)).unwrap();
    let base = server.url();
    let a = agent();

    let (status, page) = get(&a, &base);
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("app.js") && page.contains("id=\"canvas\""),
        "{page}"
    );
    let (status, script) = get(&a, &format!("{base}app.js"));
    assert_eq!(status, 200);
    assert!(String::from_utf8(script).unwrap().contains("/api/paint"));

    let (status, body) = get(&a, &format!("{base}api/projects"));
    assert_eq!(status, 200);
    let projects = json_of(&body);
    let p = &projects[0];
    assert_eq!(p["project"], "g");
    assert_eq!(p["image_size"], 16);
    let layers: Vec<&str> = p["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["layer2", "layer4"], "natural order");
    assert_eq!(p["default_layer"], "layer4", "the first given");
    let l4 = &p["layers"][1];
    assert_eq!(l4["channels"], 8);
    assert_eq!(l4["shape"], json!([8, 8]));
    let concepts = l4["concepts"].as_array().unwrap();
    assert!(!concepts.is_empty());
    for c in concepts {
        assert!(c["units"].as_u64().unwrap() >= 1, "{c}");
        assert!(c["color"].as_str().unwrap().starts_with('#'));
    }
    let concept = concepts[0]["concept"].as_str().unwrap().to_string();

    // the original scene, by itself and as an empty stack
    let (status, png) = get(&a, &format!("{base}api/scene.png?project=g&seed=3"));
    assert_eq!(status, 200);
    assert_eq!(png_of(&png).dimensions(), (16, 16));
    let empty = json!({"project": "g", "layer": "layer4", "seed": 3, "strokes": []});
    let (status, body) = post(&a, &format!("{base}api/paint"), &empty.to_string());
    assert_eq!(status, 200);
    let original = json_of(&body);
    assert_eq!(original["changed"], false);
    assert_eq!(data_url_bytes(&original["image"]), png);
    assert_eq!(
        png_of(&data_url_bytes(&original["segmentation"])).dimensions(),
        (16, 16)
    );

    // two strokes, in order, against the library's painter on the same plan
    let (mask, _) = left_half(16);
    let right: Vec<bool> = (0..256).map(|i| i % 16 >= 10).collect();
    let right = MaskBits::pack(16, 16, &right);
    let stack = json!({"project": "g", "layer": "layer4", "seed": 3, "strokes": [
        stroke("remove", &concept, &mask, 4),
        stroke("add", &concept, &right, 2),
    ]});
    let (status, body) = post(&a, &format!("{base}api/paint"), &stack.to_string());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let painted = json_of(&body);
    assert_eq!(painted["changed"], true);
    let strokes = painted["strokes"].as_array().unwrap();
    assert_eq!(strokes.len(), 2);
    assert_eq!(strokes[0]["effect"]["kind"], "removal");
    assert_eq!(strokes[0]["units"].as_array().unwrap().len(), 4);
    assert_eq!(strokes[1]["effect"]["kind"], "insertion");
    assert_eq!(strokes[1]["units"].as_array().unwrap().len(), 2);
    let served = png_of(&data_url_bytes(&painted["image"]));

    let mut so = SessionOptions::new(&f.model);
    so.segmenter = f.segmenter.clone();
    so.dissection.dir = Some(f.dissection.clone());
    let session = Session::open(&so).unwrap();
    let plan = |action, mask: &MaskBits, k| {
        let opts = PlanOptions {
            k,
            ..PlanOptions::default()
        };
        let mut s = session
            .plan(action, &concept, mask.tensor(16).unwrap(), &opts)
            .unwrap();
        s.force = false;
        s
    };
    let scene = ScenePlan {
        seed: 3,
        strokes: vec![plan(Action::Remove, &mask, 4), plan(Action::Add, &right, 2)],
        force: false,
    };
    let lib = session
        .painter()
        .unwrap()
        .paint(&[&scene])
        .unwrap()
        .remove(0);
    let lib_image = gandissect::imageio::to_rgb_images(&lib.edited.unsqueeze(0))
        .unwrap()
        .remove(0);
    assert!(
        max_diff(&served, &lib_image) <= 1,
        "the server paints as the library does"
    );
    for (s, l) in strokes.iter().zip(&lib.strokes) {
        assert_eq!(s["units"], json!(l.plan.units));
        assert_eq!(s["kept"], json!(l.kept));
        assert_eq!(s["summary"], json!(l.summary));
    }
    assert_ne!(served, png_of(&png), "the strokes changed the scene");

    // undoing every stroke shows the original's bytes again
    let (_, body) = post(&a, &format!("{base}api/paint"), &empty.to_string());
    assert_eq!(data_url_bytes(&json_of(&body)["image"]), png);

    // another layer of the same project, and its unit pictures
    let l2 = json!({"project": "g", "layer": "layer2", "seed": 3,
        "strokes": [stroke("remove", p["layers"][0]["concepts"][0]["concept"].as_str().unwrap(), &mask, 1)]});
    let (status, body) = post(&a, &format!("{base}api/paint"), &l2.to_string());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["layer"], "layer2");
    let (status, unit) = get(
        &a,
        &format!("{base}api/unit.png?project=g&layer=layer4&unit=7"),
    );
    assert_eq!(status, 200);
    assert!(
        png_of(&unit).width() > png_of(&unit).height(),
        "a strip of top images"
    );
    server.stop();
}

#[test]
fn bad_requests_get_a_4xx_with_one_line_and_the_server_keeps_serving() {
    let f = fixture("serve-bad");
    let server = Server::start(&options(&f)).unwrap();
    let base = server.url();
    let a = agent();
    let (mask, _) = left_half(16);
    let small = MaskBits::pack(8, 8, &[true; 64]);
    let ok = |s: Value| json!({"project": "g", "seed": 1, "strokes": [s]}).to_string();
    let concept = "tree";
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"project\": ".into(), 400, "cannot read the request"),
        (
            json!({"project": "g", "seed": 1, "colour": "red"}).to_string(),
            400,
            "unknown field",
        ),
        (
            json!({"project": "nope", "seed": 1}).to_string(),
            404,
            "unknown project 'nope'; this server has: g",
        ),
        (
            json!({"project": "g", "layer": "layer9", "seed": 1}).to_string(),
            404,
            "unknown layer 'layer9' of project g; it has: layer2, layer4",
        ),
        (
            json!({"project": "g", "seed": 1000}).to_string(),
            422,
            "image id 1000 is out of range",
        ),
        (
            ok(stroke("remove", "dragon", &mask, 4)),
            422,
            "stroke 1: unknown concept 'dragon'",
        ),
        (
            ok(stroke("remove", concept, &small, 4)),
            422,
            "stroke 1: the mask is 8×8 but the image is 16×16",
        ),
        (
            ok(json!({"op": "remove", "concept": concept, "mask": mask, "units": [3, 99]})),
            422,
            "unit 99 is out of range",
        ),
        (
            ok(stroke("remove", concept, &mask, 50)),
            422,
            "k = 50 but layer4 has only 8 units",
        ),
        (
            ok(stroke("paint", concept, &mask, 4)),
            400,
            "unknown variant `paint`",
        ),
        (
            json!({"project": "g", "seed": 1,
                   "strokes": vec![stroke("remove", concept, &mask, 4); 9]})
            .to_string(),
            422,
            "9 strokes is more than the 8",
        ),
    ];
    for (body, status, reason) in &cases {
        let (got, answer) = post(&a, &format!("{base}api/paint"), body);
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(got, *status, "{reason}: {text}");
        let error = json_of(&answer)["error"].as_str().unwrap().to_string();
        assert!(error.contains(reason), "wanted '{reason}' in '{error}'");
        assert!(!error.contains('\n'), "{error}");
    }
    for (url, status, reason) in [
        (
            "api/unit.png?project=g&layer=layer4&unit=8",
            422,
            "unit 8 is out of range",
        ),
        ("api/unit.png?project=g&layer=layer4", 400, "bad query"),
        ("api/scene.png?project=g&seed=-1", 400, "bad query"),
        ("api/scene.png?project=x&seed=1", 404, "unknown project 'x'"),
        ("../../etc/passwd", 404, "no such page"),
    ] {
        let (got, answer) = get(&a, &format!("{base}{url}"));
        assert_eq!(got, status, "{url}: {}", String::from_utf8_lossy(&answer));
        let error = json_of(&answer)["error"].as_str().unwrap().to_string();
        assert!(error.contains(reason), "{url}: '{error}'");
    }
    // a body over the limit is refused before it is read (the server then closes the
    // connection, so it is sent by hand)
    let mut big = std::net::TcpStream::connect(server.addr()).unwrap();
    let body = format!(
        "{{\"project\": \"g\", \"pad\": \"{}\"}}",
        "x".repeat(200_000)
    );
    write!(
        big,
        "POST /api/paint HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(answer.contains("the request is larger than"), "{answer}");

    // still serving
    let good = palette(&server)[0].clone();
    let (status, body) = post(
        &a,
        &format!("{base}api/paint"),
        &ok(stroke("remove", &good, &mask, 4)),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    server.stop();
}

#[test]
fn concurrent_clients_get_the_answers_they_would_get_alone_and_a_stalled_one_blocks_none() {
    let f = fixture("serve-many");
    let server = Server::start(&options(&f)).unwrap();
    let base = server.url();
    let (mask, _) = left_half(16);
    let concepts = palette(&server);
    let requests: Vec<String> = (0..12)
        .map(|i| {
            let op = if i % 2 == 0 { "remove" } else { "add" };
            let c = &concepts[i % concepts.len()];
            json!({"project": "g", "seed": i % 5, "strokes": [stroke(op, c, &mask, 1 + i % 4)]})
                .to_string()
        })
        .collect();
    let a = agent();
    let alone: Vec<Value> = requests
        .iter()
        .map(|r| json_of(&post(&a, &format!("{base}api/paint"), r).1))
        .collect();

    // a client that sends half a body and then nothing
    let mut stalled = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stalled,
        "POST /api/paint HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: 1000\r\n\r\n{{\"project\": \"g\","
    )
    .unwrap();

    let started = Instant::now();
    let answers: Vec<Vec<Value>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (requests, base) = (&requests, &base);
                s.spawn(move || {
                    let a = agent();
                    (0..requests.len())
                        .filter(|i| i % 4 == t)
                        .map(|i| json_of(&post(&a, &format!("{base}api/paint"), &requests[i]).1))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the stalled client held others up"
    );
    for (t, mine) in answers.iter().enumerate() {
        for (j, got) in mine.iter().enumerate() {
            let want = &alone[t + 4 * j];
            assert_eq!(got["seed"], want["seed"]);
            assert_eq!(got["strokes"], want["strokes"], "request {}", t + 4 * j);
            let (g, w) = (
                png_of(&data_url_bytes(&got["image"])),
                png_of(&data_url_bytes(&want["image"])),
            );
            assert!(max_diff(&g, &w) <= 1);
        }
    }
    // the stalled client is still connected and gets nothing until it finishes its body
    stalled
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        stalled.read(&mut buf).is_err(),
        "no answer to half a request"
    );
    drop(stalled);
    server.stop();
}

#[test]
fn a_downloaded_painting_replays_with_batch() {
    let f = fixture("serve-export");
    let server = Server::start(&options(&f)).unwrap();
    let base = server.url();
    let a = agent();
    let (mask, _) = left_half(16);
    let concepts = palette(&server);
    let body = json!({"project": "g", "seed": 5, "strokes": [
        stroke("remove", &concepts[0], &mask, 3),
        json!({"op": "add", "concept": concepts[concepts.len() - 1], "mask": mask, "k": 2,
               "force": true}),
    ]})
    .to_string();
    let mut r = a
        .post(format!("{base}api/export"))
        .header("content-type", "application/json")
        .send(&body)
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.contains("painting-g-5.zip"), "{disposition}");
    let zip_bytes = r.body_mut().read_to_vec().unwrap();
    let painted = json_of(&post(&a, &format!("{base}api/paint"), &body).1);
    server.stop();

    let dir = scratch("serve-replay");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    zip.extract(&*dir).unwrap();
    for name in [
        "scene5.png",
        "scene5-original.png",
        "scene5-compare.png",
        "scene5.json",
        "masks/stroke01.png",
        "masks/stroke02.png",
        "script.jsonl",
        "README.txt",
    ] {
        assert!(dir.join(name).is_file(), "{name} is in the zip");
    }
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scene5.json")).unwrap()).unwrap();
    assert_eq!(
        record["strokes"], painted["strokes"],
        "the record is the page's"
    );
    let zipped = image::open(dir.join("scene5.png")).unwrap().to_rgb8();
    assert_eq!(zipped, png_of(&data_url_bytes(&painted["image"])));
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("gandissect batch script.jsonl"), "{readme}");

    let script = dir.join("script.jsonl");
    let out = dir.join("replay");
    let run = gandissect(&[
        "batch",
        script.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model",
        &f.model,
        "--segmenter",
        &f.segmenter,
        "--layer",
        "layer4",
        "--dissection",
        f.dissection.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let replayed: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scene5.json")).unwrap()).unwrap();
    assert_eq!(
        replayed["strokes"], record["strokes"],
        "the replay judges every stroke alike"
    );
    let again = image::open(out.join("scene5.png")).unwrap().to_rgb8();
    assert!(max_diff(&again, &zipped) <= 1);
}

#[test]
fn a_data_directory_serves_each_generator_dissection_as_a_project() {
    let f = fixture("serve-data");
    // a second copy of the dissection one level deeper, and a directory without one
    let root = f.dissection.parent().unwrap().to_path_buf();
    let nested = root.join("more/copy");
    copy_dir(&f.dissection, &nested);
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let mut o = options(&f);
    o.projects = ProjectSource::Data(root.clone());
    let server = Server::start(&o).unwrap();
    let names: Vec<&str> = server
        .projects()
        .iter()
        .map(|p| p.project.as_str())
        .collect();
    assert_eq!(names, ["copy", "tiny"]);
    let (status, body) = get(&agent(), &format!("{}api/projects", server.url()));
    assert_eq!(status, 200);
    let layers = &json_of(&body)[1]["layers"];
    assert_eq!(layers[0]["layer"], "layer2");
    assert_eq!(layers[1]["layer"], "layer4");
    server.stop();

    let mut o = options(&f);
    o.projects = ProjectSource::Data(root.join("empty"));
    let err = Server::start(&o).err().unwrap().to_string();
    assert!(err.contains("no generator dissection under"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_scene_cache_smaller_than_the_scenes_painted_changes_no_answer() {
    let f = fixture("serve-cache");
    let big = Server::start(&options(&f)).unwrap();
    let mut o = options(&f);
    o.limits.scenes = 1;
    let small = Server::start(&o).unwrap();
    let (mask, _) = left_half(16);
    let concept = palette(&big)[0].clone();
    let a = agent();
    for seed in [1, 2, 3, 1, 4, 2] {
        let body = json!({"project": "g", "seed": seed, "strokes": [stroke("remove", &concept, &mask, 2)]})
            .to_string();
        let want = json_of(&post(&a, &format!("{}api/paint", big.url()), &body).1);
        let got = json_of(&post(&a, &format!("{}api/paint", small.url()), &body).1);
        assert_eq!(got["strokes"], want["strokes"], "seed {seed}");
        assert_eq!(got["image"], want["image"], "seed {seed}");
    }
    small.stop();
    big.stop();
}

#[test]
fn the_serve_benchmark_reports_consistent_figures_on_the_shipped_generator() {
    use gandissect::bench::serve::{ServeSettings, measure, targets};
    common::require_shipped_models();
    let settings = ServeSettings {
        warmup: 2,
        strokes: 6,
        min_seconds: 0.0,
        clients: 2,
        sustained_seconds: 0.5,
    };
    let b = measure(
        "world-proggan",
        "world-seg",
        "layer4",
        &settings,
        Device::Cpu,
    )
    .unwrap();
    assert_eq!((b.layer.as_str(), b.concept.as_str()), ("layer4", "tree"));
    assert_eq!((b.stroke.runs, b.suffix.runs), (6, 6), "interleaved rounds");
    assert!((b.overhead_ratio - b.stroke.p50_ms / b.suffix.p50_ms).abs() < 1e-9);
    assert_eq!(b.failed, 0);
    assert!(b.sustained.runs > 0 && b.sustained_strokes_per_s > 0.0);
    let t = targets(&b);
    assert_eq!(t.len(), 4);
    assert_eq!(t[0].value, Some(b.stroke.p50_ms));
}
