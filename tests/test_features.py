"""`jne features`: per-layer tokens of small random-init models built from configs (no download),
checked against the upstream library's own forward pass."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from jnecore.cli import main
from jnecore.features import extract_features, load_model, open_images, partial_path
from jnecore.io import read_array
from jnecore.validation import InputError

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    """A tiny random-init ViT (2 blocks, width 32, 32 px, 8 px patches) with its processor, on disk."""
    d = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                 image_size=32, patch_size=8)
    transformers.ViTModel(cfg).save_pretrained(d)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def images_npy(tmp_path_factory):
    rng = np.random.default_rng(0)
    p = tmp_path_factory.mktemp("img") / "images.npy"
    np.save(p, rng.integers(0, 256, size=(11, 40, 36, 3), dtype=np.uint8))
    return p


def _reference(vit_dir, arr, pooling="cls"):
    """The upstream forward pass: transformers' own processor and model, output_hidden_states."""
    proc = transformers.AutoImageProcessor.from_pretrained(vit_dir)
    model = transformers.ViTModel.from_pretrained(vit_dir).eval()
    px = proc(images=list(arr), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hs = model(pixel_values=px, output_hidden_states=True).hidden_states
    return [(h[:, 0] if pooling == "cls" else h[:, 1:].mean(1)).numpy() for h in hs]


def _run(vit_dir, src, out, **kw):
    model = load_model(str(vit_dir), device="cpu")
    with_images = open_images(src)
    try:
        return extract_features(with_images, model, out, progress=False, **kw)
    finally:
        with_images.close()


def _content(path):
    with h5py.File(path, "r") as fh:
        return ({k: fh[k][()] for k in fh.keys()}, {k: str(v) for k, v in fh.attrs.items()})


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_layers_match_upstream_forward(vit_dir, images_npy, tmp_path, pooling):
    out = _run(vit_dir, images_npy, tmp_path / "f.h5", batch_size=4, pooling=pooling)
    ref = _reference(vit_dir, np.load(images_npy), pooling)
    data, attrs = _content(out)
    layers = json.loads(attrs["layers"])
    assert layers == ["embedding", "block01", "block02"]
    assert json.loads(attrs["dims"]) == [32, 32, 32]
    assert attrs["model"] == str(vit_dir) and attrs["pooling"] == pooling
    assert json.loads(attrs["preprocessing"])["size"] == {"height": 32, "width": 32}
    assert list(data["stimulus_ids"].astype(str)) == [str(i) for i in range(11)]
    for name, r in zip(layers, ref):
        assert data[name].shape == (11, 32) and data[name].dtype == np.float32
        np.testing.assert_allclose(data[name], r, rtol=1e-5, atol=1e-5)
    assert not np.allclose(data["block02"], data["embedding"])


def test_batch_size_and_chunks_do_not_change_values(vit_dir, images_npy, tmp_path):
    a, _ = _content(_run(vit_dir, images_npy, tmp_path / "a.h5", batch_size=1, chunk_rows=3))
    b, _ = _content(_run(vit_dir, images_npy, tmp_path / "b.h5", batch_size=11))
    c, _ = _content(_run(vit_dir, images_npy, tmp_path / "c.h5", batch_size=4, chunk_rows=7))
    for k in ("embedding", "block01", "block02"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c[k], b[k], rtol=1e-5, atol=1e-6)


def test_layer_selection(vit_dir, images_npy, tmp_path):
    data, attrs = _content(_run(vit_dir, images_npy, tmp_path / "s.h5", layers="0,block02"))
    assert json.loads(attrs["layers"]) == ["embedding", "block02"]
    assert set(data) == {"embedding", "block02", "stimulus_ids"}
    with pytest.raises(InputError, match="unknown layer 'block9'.*embedding, block01, block02"):
        _run(vit_dir, images_npy, tmp_path / "t.h5", layers="block9")


def test_resume_after_interruption_gives_identical_file(vit_dir, images_npy, tmp_path, monkeypatch):
    full = _run(vit_dir, images_npy, tmp_path / "full.h5", batch_size=3)
    out = tmp_path / "r.h5"
    from jnecore.features import _images

    real = _images.ArrayImages.read
    calls = []

    def flaky(self, s, e):
        calls.append(s)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, s, e)

    monkeypatch.setattr(_images.ArrayImages, "read", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run(vit_dir, images_npy, out, batch_size=3)
    monkeypatch.setattr(_images.ArrayImages, "read", real)
    assert not out.exists() and partial_path(out).exists()
    with h5py.File(partial_path(out), "r") as fh:
        assert fh.attrs["n_done"] == 6
    with pytest.raises(InputError, match="--resume"):  # no silent restart over kept work
        _run(vit_dir, images_npy, out, batch_size=3)
    seen = []
    monkeypatch.setattr(_images.ArrayImages, "read", lambda self, s, e: seen.append(s) or real(self, s, e))
    _run(vit_dir, images_npy, out, batch_size=3, resume=True)
    assert seen == [6, 9]  # only the rows not done
    assert not partial_path(out).exists()
    a, aa = _content(full)
    b, ba = _content(out)
    assert aa == ba and a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_folder_and_hdf5_sources(vit_dir, images_npy, tmp_path):
    from PIL import Image

    arr = np.load(images_npy)[:5]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, a in enumerate(arr):
        Image.fromarray(a).save(folder / f"img{4 - i}.png")  # sorted order is the reverse of i
    (folder / "notes.txt").write_text("not an image")
    h5 = tmp_path / "nsd_stimuli.hdf5"
    with h5py.File(h5, "w") as fh:
        fh.create_dataset("imgBrick", data=arr, chunks=(1, 40, 36, 3))
    ref = _reference(vit_dir, arr)
    f, _ = _content(_run(vit_dir, folder, tmp_path / "folder.h5", batch_size=2))
    assert list(f["stimulus_ids"].astype(str)) == ["img0", "img1", "img2", "img3", "img4"]
    np.testing.assert_allclose(f["block02"], ref[2][::-1], rtol=1e-5, atol=1e-5)
    h, _ = _content(_run(vit_dir, h5, tmp_path / "h5.h5", batch_size=2))
    np.testing.assert_allclose(h["block02"], ref[2], rtol=1e-5, atol=1e-5)


def test_hdf5_source_is_read_batch_by_batch(tmp_path):
    h5 = tmp_path / "nsd_stimuli.hdf5"
    with h5py.File(h5, "w") as fh:
        fh.create_dataset("imgBrick", shape=(7, 8, 8, 3), dtype=np.uint8)
    src = open_images(h5)
    reads = []

    class Spy:
        def __init__(self, ds):
            self.ds, self.ndim, self.shape, self.dtype = ds, ds.ndim, ds.shape, ds.dtype

        def __getitem__(self, sl):
            reads.append((sl.start, sl.stop))
            return self.ds[sl]

    src._array = Spy(src._array)
    assert len(src.read(2, 5)) == 3 and reads == [(2, 5)]
    src.close()


def test_run_reads_a_layer(vit_dir, images_npy, tmp_path):
    out = _run(vit_dir, images_npy, tmp_path / "f.h5")
    with h5py.File(out, "r") as fh:
        expected = fh["block01"][()]
    np.testing.assert_array_equal(read_array(f"{out}:block01"), expected)
    with pytest.raises(InputError, match=r"has no layer 'block7' \(its layers: embedding, block01, block02\)"):
        read_array(f"{out}:block7")
    with pytest.raises(InputError, match="name one as FILE.h5:layer"):
        read_array(out)


def _cli(capsys, *args):
    code = main(["features", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_writes_and_refuses_overwrite(vit_dir, images_npy, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    code, stdout, err = _cli(capsys, "--images", images_npy, "--model", vit_dir, "--out", out, "--device", "cpu",
                             "--batch-size", "5", "--quiet")
    assert code == 0, err
    assert "wrote" in stdout and "images/s" in stdout
    before = out.stat().st_mtime_ns
    code, _, err = _cli(capsys, "--images", images_npy, "--model", vit_dir, "--out", out, "--quiet")
    assert code == 2 and err.count("\n") == 1 and "exists" in err and "--overwrite" in err
    assert out.stat().st_mtime_ns == before


def test_cli_bad_image_is_one_line_naming_it(vit_dir, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(folder / f"a{i}.png")
    (folder / "a1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "o.h5"
    code, _, err = _cli(capsys, "--images", folder, "--model", vit_dir, "--out", out, "--quiet", "--batch-size", "1")
    assert code == 2 and err.count("\n") == 1
    assert "a1.png: cannot be decoded as an image" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_missing_weights_offline_is_one_line(images_npy, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    out = tmp_path / "o.h5"
    code, _, err = _cli(capsys, "--images", images_npy, "--model", "someone/no-such-vit", "--out", out, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert "no weights found offline" in err and "Hugging Face cache" in err and "--allow-download" in err
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.parametrize("make,problem", [
    (lambda p: np.save(p / "x.npy", np.zeros((2, 8, 8), np.uint8)), "must hold uint8 images"),
    (lambda p: np.save(p / "x.npy", np.zeros((2, 8, 8, 3), np.float32)), "must hold uint8 images"),
])
def test_bad_arrays_are_refused(tmp_path, make, problem):
    make(tmp_path)
    with pytest.raises(InputError, match=problem):
        open_images(tmp_path / "x.npy")


def test_jnecore_import_stays_light():
    code = ("import sys, jnecore, jnecore.cli, jnecore.features; "
            "print(sorted(m for m in ('transformers', 'timm', 'open_clip', 'PIL') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_timm_vit_matches_its_own_forward(tmp_path, images_npy):
    timm = pytest.importorskip("timm")  # needs torchvision, which does not load beside the CPU torch here
    from jnecore.features import _models

    torch.manual_seed(0)
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                            embed_dim=32, num_heads=2)
    _, _, _, has_cls = _models._timm_parts(net, "tiny")
    assert has_cls
    px = torch.randn(3, 3, 32, 32)
    run = _models._hooked(net.norm_pre, list(net.blocks))
    with torch.no_grad():
        hidden = run(px, net.forward_features)
        _, inter = net.forward_intermediates(px, return_prefix_tokens=True, norm=False, output_fmt="NLC")
    assert len(hidden) == 3
    for h, (_, prefix) in zip(hidden[1:], inter):
        torch.testing.assert_close(h[:, 0], prefix[:, 0])


def test_resume_refuses_another_extraction(vit_dir, images_npy, tmp_path, monkeypatch):
    from jnecore.features import _images

    out = tmp_path / "r.h5"
    real = _images.ArrayImages.read
    monkeypatch.setattr(_images.ArrayImages, "read",
                        lambda self, s, e: (_ for _ in ()).throw(KeyboardInterrupt) if s >= 4 else real(self, s, e))
    with pytest.raises(KeyboardInterrupt):
        _run(vit_dir, images_npy, out, batch_size=4)
    monkeypatch.setattr(_images.ArrayImages, "read", real)
    with pytest.raises(InputError, match="its pooling differs"):
        _run(vit_dir, images_npy, out, batch_size=4, pooling="mean", resume=True)
    other = tmp_path / "other.npy"
    np.save(other, np.load(images_npy)[:, :20])
    with pytest.raises(InputError, match="its images differ"):
        _run(vit_dir, other, out, batch_size=4, resume=True)


def test_cli_interrupt_keeps_rows_for_resume(vit_dir, images_npy, tmp_path, capsys, monkeypatch):
    from jnecore.features import _images

    real = _images.ArrayImages.read
    monkeypatch.setattr(_images.ArrayImages, "read",
                        lambda self, s, e: (_ for _ in ()).throw(KeyboardInterrupt) if s >= 5 else real(self, s, e))
    out = tmp_path / "i.h5"
    args = ("--images", images_npy, "--model", vit_dir, "--out", out, "--quiet", "--batch-size", "5")
    code, _, err = _cli(capsys, *args)
    assert code == 130 and err.count("\n") == 1
    assert "interrupted" in err and "rerun with --resume" in err and not out.exists()
    monkeypatch.setattr(_images.ArrayImages, "read", real)
    code, _, err = _cli(capsys, *args, "--resume")
    assert code == 0, err
    np.testing.assert_allclose(read_array(f"{out}:block02"), _reference(vit_dir, np.load(images_npy))[2],
                               rtol=1e-5, atol=1e-5)


def test_hf_clip_image_tower_matches_its_own_forward(tmp_path, images_npy):
    """A CLIP checkpoint (text + vision) loads as its image tower, with CLIP's resize + crop."""
    torch.manual_seed(0)
    cfg = transformers.CLIPConfig(
        text_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         vocab_size=99, max_position_embeddings=16),
        vision_config=dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48,
                           image_size=32, patch_size=8),
        projection_dim=8)
    transformers.CLIPModel(cfg).save_pretrained(tmp_path / "clip")
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "clip")
    out = _run(tmp_path / "clip", images_npy, tmp_path / "c.h5", batch_size=4)
    data, attrs = _content(out)
    assert json.loads(attrs["layers"]) == ["embedding", "block01", "block02", "block03"]
    assert json.loads(attrs["preprocessing"])["crop_size"] == {"height": 32, "width": 32}
    proc = transformers.CLIPImageProcessor.from_pretrained(tmp_path / "clip")
    tower = transformers.CLIPVisionModel.from_pretrained(tmp_path / "clip").eval()
    px = proc(images=list(np.load(images_npy)), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hs = tower(pixel_values=px, output_hidden_states=True).hidden_states
    assert len(hs) == 4
    for name, h in zip(json.loads(attrs["layers"]), hs):
        assert data[name].shape == (11, 24)
        np.testing.assert_allclose(data[name], h[:, 0].numpy(), rtol=1e-5, atol=1e-5)


def test_bfloat16_is_close_to_float32(vit_dir, images_npy, tmp_path):
    ref, _ = _content(_run(vit_dir, images_npy, tmp_path / "f32.h5"))
    model = load_model(str(vit_dir), device="cpu", dtype="bfloat16")
    src = open_images(images_npy)
    out = extract_features(src, model, tmp_path / "bf16.h5", progress=False)
    src.close()
    low, attrs = _content(out)
    assert attrs["dtype"] == "bfloat16" and low["block02"].dtype == np.float32
    err = np.abs(low["block02"] - ref["block02"]).max() / np.abs(ref["block02"]).max()
    assert 0 < err < 0.05


def test_broken_model_folder_is_one_line(tmp_path, images_npy, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{not json")
    code, _, err = _cli(capsys, "--images", images_npy, "--model", tmp_path / "m", "--out", tmp_path / "o.h5",
                        "--quiet")
    assert code == 2 and err.count("\n") == 1 and "cannot load the model" in err, err


def test_jne_run_names_the_layers_of_a_features_file(vit_dir, images_npy, tmp_path, capsys):
    out = _run(vit_dir, images_npy, tmp_path / "f.h5")
    np.save(tmp_path / "R.npy", np.zeros((11, 4), np.float32))
    code = main(["run", "--features", f"{out}:block7", "--responses", str(tmp_path / "R.npy"),
                 "--out", str(tmp_path / "res"), "--space", "none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "has no layer 'block7' (its layers: embedding, block01, block02)" in err
    assert not (tmp_path / "res").exists()
