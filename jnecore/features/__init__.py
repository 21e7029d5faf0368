"""ANN features from images: per-layer CLS (or mean patch) tokens of a vision transformer.

- image sources (:func:`open_images`): a folder of image files, NSD's ``nsd_stimuli.hdf5``
  (``imgBrick``, streamed) or a uint8 (N, H, W, 3) ``.npy`` (memory-mapped)
- models (:func:`load_model`): Hugging Face ``transformers``, ``open_clip`` and ``timm``, each
  with its own preprocessing, weights from local files only unless downloads are allowed
- extraction (:func:`extract_features`): one HDF5 file, one (N, D) dataset per layer, written
  in chunks and resumable; ``jne run --features FILE.h5:layer`` reads a layer

The heavy libraries are imported only when a model is loaded.
"""

from ._extract import FORMAT, POOLINGS, extract_features, partial_path, read_layer_names, select_layers
from ._images import IMAGE_SUFFIXES, ArrayImages, FolderImages, ImageSource, open_images
from ._models import FAMILIES, FeatureModel, load_model, split_model_name

__all__ = ["FORMAT", "POOLINGS", "FAMILIES", "IMAGE_SUFFIXES", "ArrayImages", "FeatureModel", "FolderImages",
           "ImageSource", "extract_features", "load_model", "open_images", "partial_path", "read_layer_names",
           "select_layers", "split_model_name"]
