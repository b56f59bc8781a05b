//! Parity with PyTorch: reference models written in plain PyTorch (tests/fixtures/make_parity.py)
//! are saved as `.pth`; the Rust models load them and must reproduce their outputs within
//! 1e-4 of the output's scale (max |error| / max |reference|).

mod common;

use gandissect::cut::{Cut, Edit};
use gandissect::nets::layered::LayeredNet;
use gandissect::nets::proggan::ProGan;
use gandissect::nets::upconv::UpsampleConv;
use gandissect::nets::vgg::{Normalization, Vgg};
use gandissect::zsample::z_dataset;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

fn fixtures() -> PathBuf {
    let script = common::repo_root().join("tests/fixtures/make_parity.py");
    common::cached_fixture("parity", &script, &[])
}

fn npy(dir: &Path, name: &str) -> Tensor {
    Tensor::read_npy(dir.join(format!("{name}.npy"))).unwrap()
}

/// Max absolute error relative to the reference's largest magnitude; prints it for the record.
fn relative_error(what: &str, ours: &Tensor, reference: &Tensor) -> f64 {
    assert_eq!(ours.size(), reference.size(), "{what}: shapes differ");
    let err = f64::try_from((ours - reference).abs().max()).unwrap();
    let scale = f64::try_from(reference.abs().max()).unwrap();
    let rel = err / scale;
    println!("{what}: max |error| {err:.3e}, scale {scale:.3e}, relative {rel:.3e}");
    rel
}

#[test]
fn z_stream_matches_numpy_random_state() {
    let dir = fixtures();
    let reference = npy(&dir, "z512");
    let ours = z_dataset(1, 3, 512, Device::Cpu).unwrap();
    assert!(
        ours.equal(&reference),
        "z rows differ from numpy's RandomState(1)"
    );
}

#[test]
fn proggan_256_matches_pytorch_including_an_edit() {
    let _g = tch::no_grad_guard();
    let dir = fixtures();
    let g = ProGan::load(&dir.join("proggan256.pth"), Device::Cpu).unwrap();
    assert_eq!(g.sizes(), [512, 512, 512, 512, 512, 256, 128, 64]);
    assert_eq!(g.layer_names().last().unwrap(), "output_256x256");
    let z = npy(&dir, "z512").narrow(0, 0, 2);
    let cut = Cut::new(&g, "layer4").unwrap();
    let (h4, out) = cut.forward_edited(&z, &[]).unwrap();
    assert!(relative_error("proggan256 layer4", &h4, &npy(&dir, "proggan256_layer4")) <= 1e-4);
    assert!(relative_error("proggan256 output", &out, &npy(&dir, "proggan256_out")) <= 1e-4);
    let units: Vec<i64> = (0..60).step_by(3).collect();
    let edit = Edit::ablate(&units, Some(npy(&dir, "edit_mask8")));
    let (_, edited) = cut.forward_edited(&z, &[edit]).unwrap();
    assert!(
        relative_error(
            "proggan256 edited",
            &edited,
            &npy(&dir, "proggan256_edited")
        ) <= 1e-4
    );
    // the edit must matter: the edited image differs from the plain one by far more than the tolerance
    assert!(relative_error("edit effect", &edited, &out) > 1e-2);
}

#[test]
fn small_proggan_loads_from_a_wrapper_and_from_old_keys() {
    let _g = tch::no_grad_guard();
    let dir = fixtures();
    let z = npy(&dir, "small_z");
    for file in ["proggan_small_wrapped.pth", "proggan_small_oldkeys.pth"] {
        let g = ProGan::load(&dir.join(file), Device::Cpu).unwrap();
        assert_eq!(g.sizes(), [64, 32, 32, 16, 8], "{file}");
        let cut = Cut::new(&g, "layer4").unwrap();
        let (h4, out) = cut.forward_edited(&z, &[]).unwrap();
        assert!(relative_error(&format!("{file} layer4"), &h4, &npy(&dir, "small_layer4")) <= 1e-4);
        assert!(relative_error(&format!("{file} output"), &out, &npy(&dir, "small_out")) <= 1e-4);
    }
}

/// At every layer of `file`'s generator, on both upsampling-convolution paths: the prefix's
/// output and the forward with 20 units ablated in a rectangle of that layer's grid.
fn every_cut_matches(dir: &Path, file: &str, prefix: &str, z: &Tensor) {
    let loaded = ProGan::load(&dir.join(file), Device::Cpu).unwrap();
    let z = z.narrow(0, 0, 1);
    let names = loaded.layer_names().to_vec();
    let image = npy(dir, &format!("{prefix}_layer_{}", names.last().unwrap()));
    for mode in [UpsampleConv::Fused, UpsampleConv::Plain] {
        let g = loaded.with_upsample_conv(mode).unwrap();
        assert_eq!(g.upsample_conv(), mode);
        for name in &names {
            let what = format!("{prefix} {mode} {name}");
            let cut = Cut::new(&g, name).unwrap();
            let layer = npy(dir, &format!("{prefix}_layer_{name}"));
            let mask = npy(dir, &format!("{prefix}_mask_{name}"));
            let units: Vec<i64> = (0..layer.size()[1].min(60)).step_by(3).collect();
            let (h, edited) = cut
                .forward_edited(&z, &[Edit::ablate(&units, Some(mask))])
                .unwrap();
            assert!(relative_error(&format!("{what} output"), &h, &layer) <= 1e-4);
            let reference = npy(dir, &format!("{prefix}_cut_{name}"));
            assert!(relative_error(&format!("{what} edited"), &edited, &reference) <= 1e-4);
            // the edit must matter at every cut
            assert!(relative_error(&format!("{what} edit effect"), &edited, &image) > 1e-3);
        }
    }
}

#[test]
fn proggan_256_matches_pytorch_at_every_cut_layer_on_both_paths() {
    let _g = tch::no_grad_guard();
    let dir = fixtures();
    every_cut_matches(&dir, "proggan256.pth", "proggan256", &npy(&dir, "z512"));
}

#[test]
fn small_proggan_matches_pytorch_at_every_cut_layer_on_both_paths() {
    let _g = tch::no_grad_guard();
    let dir = fixtures();
    every_cut_matches(
        &dir,
        "proggan_small_wrapped.pth",
        "small",
        &npy(&dir, "small_z"),
    );
}

#[test]
fn vgg16_places365_matches_pytorch_including_an_edit() {
    let _g = tch::no_grad_guard();
    let dir = fixtures();
    let net = Vgg::load(
        &dir.join("vgg16_365.pth"),
        Normalization::imagenet(),
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(net.config().num_classes, 365);
    let x = npy(&dir, "vgg_input");
    let cut = Cut::new(&net, "conv5_3").unwrap();
    assert_eq!(cut.layer_name(), "features.28");
    let (h, logits) = cut.forward_edited(&x, &[]).unwrap();
    assert!(relative_error("vgg conv5_3", &h, &npy(&dir, "vgg_conv5_3")) <= 1e-4);
    assert!(relative_error("vgg logits", &logits, &npy(&dir, "vgg_logits")) <= 1e-4);
    let units: Vec<i64> = (0..60).step_by(3).collect();
    let edit = Edit::ablate(&units, Some(npy(&dir, "vgg_edit_mask14")));
    let (_, edited) = cut.forward_edited(&x, &[edit]).unwrap();
    assert!(
        relative_error(
            "vgg edited logits",
            &edited,
            &npy(&dir, "vgg_logits_edited")
        ) <= 1e-4
    );
    assert!(relative_error("vgg edit effect", &edited, &logits) > 1e-4);
    // the post-ReLU variant of the same layer
    let relu = Cut::new(&net, "relu5_3").unwrap().prefix(&x);
    assert!(relative_error("vgg relu5_3", &relu, &npy(&dir, "vgg_conv5_3").relu()) <= 1e-4);
}
