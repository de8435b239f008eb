"""The hand model (24 shape parameters -> MediaPipe's 21 hand points), the fixed alphabet of letter
shapes and movements, and the face and pose templates. Nothing here depends on ``--seed``."""

from __future__ import annotations

import numpy as np

from aslfr_lib import landmarks, vocab

# --------------------------------------------------------------------------------------------
# Hand model: 24 shape parameters -> MediaPipe's 21 hand points.
#
# Local frame of a right hand, palm to the camera: x toward the thumb, y down the image (fingers
# point to -y), z away from the camera (MediaPipe: smaller z = closer). Unit: wrist to middle
# knuckle. Parameter layout:

MCP, PIP, DIP, SPREAD = slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)  # index..pinky
THUMB_ABDUCTION, THUMB_OPPOSITION, THUMB_FLEXION = 16, 17, slice(18, 21)  # 3 joints
ROTATION = slice(21, 24)  # roll (in the image plane), pitch, yaw of the wrist
NUM_SHAPE_PARAMETERS = 24

_KNUCKLES = np.array(  # index, middle, ring, pinky knuckles (MCP)
    [[0.30, -0.95, 0.0], [0.08, -1.00, 0.0], [-0.13, -0.94, 0.0], [-0.32, -0.82, 0.0]]
)
_THUMB_BASE = np.array([0.22, -0.18, -0.05])  # thumb CMC, landmark 1
_FINGER_FAN = np.array([0.10, 0.0, -0.08, -0.18])  # resting angle of each finger from vertical
_THUMB_FAN = 0.5
_BONES = np.array(  # proximal, middle, distal bone lengths: thumb, index, middle, ring, pinky
    [
        [0.38, 0.30, 0.26],
        [0.43, 0.25, 0.20],
        [0.48, 0.29, 0.22],
        [0.45, 0.27, 0.21],
        [0.35, 0.21, 0.19],
    ]
)
_TOWARD_CAMERA = np.array([0.0, 0.0, -1.0])


def _rotation_matrices(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations Rz(roll) @ Rx(pitch) @ Ry(yaw)."""
    cr, sr, cp, sp, cy, sy = (f(a) for a in (roll, pitch, yaw) for f in (np.cos, np.sin))
    zero, one = np.zeros_like(roll), np.ones_like(roll)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    return rz @ rx @ ry


def hand_points(parameters: np.ndarray, bone_scale: np.ndarray | None = None) -> np.ndarray:
    """Forward kinematics: (T, 24) shape parameters -> (T, 21, 3) points, rotated about the wrist.

    ``bone_scale`` (5,) stretches each digit (thumb first): a signer's own hand proportions.
    """
    parameters = np.atleast_2d(parameters)
    count = len(parameters)
    bones = _BONES * (1.0 if bone_scale is None else np.asarray(bone_scale)[:, None])
    points = np.zeros((count, 21, 3))

    # Fingers: planar chains that flex toward the camera.
    fan = _FINGER_FAN + parameters[:, SPREAD]  # (T, 4)
    along = np.stack([np.sin(fan), -np.cos(fan), np.zeros_like(fan)], -1)  # (T, 4, 3)
    flexion = np.cumsum(
        np.stack([parameters[:, MCP], parameters[:, PIP], parameters[:, DIP]], -1), -1
    )  # (T, 4, 3 joints)
    directions = (
        np.cos(flexion)[..., None] * along[:, :, None, :]
        + np.sin(flexion)[..., None] * _TOWARD_CAMERA
    )  # (T, 4, 3 joints, 3)
    joints = _KNUCKLES[None, :, None, :] + np.cumsum(
        bones[1:, :, None] * directions, axis=2
    )  # (T, 4, 3, 3)
    for finger in range(4):
        first = 5 + 4 * finger
        points[:, first] = _KNUCKLES[finger]
        points[:, first + 1 : first + 4] = joints[:, finger]

    # Thumb: abduction in the palm plane, opposition toward the camera, flexion across the palm.
    abduction = _THUMB_FAN + parameters[:, THUMB_ABDUCTION]
    opposition = parameters[:, THUMB_OPPOSITION]
    in_plane = np.stack([np.sin(abduction), -np.cos(abduction), np.zeros(count)], -1)
    across = np.stack([-np.cos(abduction), -np.sin(abduction), np.zeros(count)], -1)
    axis = np.cos(opposition)[:, None] * in_plane + np.sin(opposition)[:, None] * _TOWARD_CAMERA
    curl = across + _TOWARD_CAMERA
    curl -= np.sum(curl * axis, -1, keepdims=True) * axis
    curl /= np.linalg.norm(curl, axis=-1, keepdims=True)
    thumb_flexion = np.cumsum(parameters[:, THUMB_FLEXION], -1)  # (T, 3)
    thumb_directions = (
        np.cos(thumb_flexion)[..., None] * axis[:, None]
        + np.sin(thumb_flexion)[..., None] * curl[:, None]
    )
    points[:, 1] = _THUMB_BASE
    points[:, 2:5] = _THUMB_BASE + np.cumsum(bones[0][None, :, None] * thumb_directions, axis=1)

    rotation = _rotation_matrices(*parameters[:, ROTATION].T)
    return np.einsum("tij,tkj->tki", rotation, points)


# --------------------------------------------------------------------------------------------
# The alphabet of hand shapes. FIXED: built from its own seed, never from --seed.

ALPHABET_SEED = 20230511
_FINGER_STATES = np.array(  # MCP, PIP, DIP flexion
    [
        [0.05, 0.05, 0.05],  # extended
        [1.50, 1.65, 0.95],  # curled into the fist
        [1.35, 0.10, 0.05],  # bent at the knuckle, straight
        [0.25, 1.35, 1.05],  # hooked
        [0.75, 0.85, 0.55],  # rounded
    ]
)
_FINGER_STATE_ODDS = [0.35, 0.30, 0.10, 0.12, 0.13]
_THUMB_STATES = np.array(  # abduction, opposition, flexion x 3
    [
        [1.00, 0.20, 0.05, 0.05, 0.05],  # out
        [0.10, 0.05, 0.05, 0.10, 0.05],  # along the index
        [0.50, 0.90, 0.20, 0.35, 0.30],  # across the fingers
        [0.20, 1.20, 0.30, 0.50, 0.40],  # tucked under
        [0.70, 0.75, 0.15, 0.30, 0.25],  # rounded
    ]
)
_SPREADS = np.array(  # index, middle, ring, pinky: closed, spread, index and middle crossed
    [[0, 0, 0, 0], [0.22, 0.05, -0.08, -0.2], [-0.18, 0.16, 0, 0]]
)
_SPREAD_ODDS = [0.6, 0.25, 0.15]
_ORIENTATIONS = np.array(  # roll, pitch, yaw
    [[0, 0, 0], [1.45, 0, 0.3], [2.7, 0.3, 0], [0.1, 0, 1.2], [0.35, 0.7, 0.2]]
)  # upright, sideways, pointing down, palm sideways, tilted forward
_ORIENTATION_ODDS = [0.6, 0.12, 0.1, 0.1, 0.08]
REST = vocab.NUM_CHARACTERS  # shape index of the relaxed hand before and after signing
_REST_SHAPE = np.array(
    [0.5] * 4 + [0.6] * 4 + [0.3] * 4 + [0.0] * 4 + [0.3, 0.3, 0.2, 0.2, 0.1] + [0.4, 0.6, 0.3]
)
MIN_SHAPE_DISTANCE = 0.12  # mean point distance (hand units) between any two letters' images


def _shape_from_states(finger: np.ndarray, thumb: int, spread: int, orientation: int) -> np.ndarray:
    flexion = _FINGER_STATES[finger]  # (4, 3)
    return np.concatenate(
        [flexion[:, 0], flexion[:, 1], flexion[:, 2], _SPREADS[spread]]
        + [_THUMB_STATES[thumb], _ORIENTATIONS[orientation]]
    )


def _image_shape(parameters: np.ndarray) -> np.ndarray:
    """(K, 24) -> (K, 21, 2) centred image-plane points: what a camera can tell apart."""
    points = hand_points(parameters)[..., :2]
    return points - points.mean(axis=1, keepdims=True)


def _build_alphabet() -> tuple[np.ndarray, dict[int, tuple[np.ndarray, float]]]:
    """(60, 24) shapes (59 characters + REST) and the movements of the moving letters."""
    rng = np.random.default_rng(ALPHABET_SEED)
    shapes: list[np.ndarray] = []
    images: list[np.ndarray] = []
    while len(shapes) < vocab.NUM_CHARACTERS:
        shape = _shape_from_states(
            rng.choice(5, 4, p=_FINGER_STATE_ODDS),
            rng.integers(5),
            rng.choice(3, p=_SPREAD_ODDS),
            rng.choice(5, p=_ORIENTATION_ODDS),
        )
        shape = shape + rng.normal(0, 0.06, NUM_SHAPE_PARAMETERS)
        image = _image_shape(shape[None])[0]
        if images:
            distances = np.linalg.norm(np.array(images) - image, axis=-1).mean(-1)
            if distances.min() < MIN_SHAPE_DISTANCE:
                continue
        shapes.append(shape)
        images.append(image)
    alphabet = np.array(shapes + [_REST_SHAPE])
    # As in ASL, "j" is "i" drawn in the air: the same shape plus a twist and a hooked path.
    # Movements: (path of the wrist in hand units over the letter's time, added roll in radians).
    j, i, z = (vocab.CHAR_TO_ID[c] for c in "jiz")
    alphabet[j] = alphabet[i]
    movements = {
        j: (np.array([[0, 0], [0, 0.35], [-0.2, 0.55], [-0.45, 0.45]]), -1.0),
        z: (np.array([[0, 0], [0.55, 0], [0.05, 0.5], [0.6, 0.5]]) - [0.3, 0.25], 0.0),
    }
    return alphabet, movements


ALPHABET, MOVEMENTS = _build_alphabet()

# --------------------------------------------------------------------------------------------
# Face and pose templates (fixed; signers perturb them). Face unit: face height. The face is a
# stand-in (points in an oval) except for the lips, which sit where MediaPipe's mesh has them:
# the reference model reads lips, and they must look like lips to be a fair distraction.


def _build_face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(468, 3) face mesh template, plus per-point displacements for mouth opening and smiling."""
    rng = np.random.default_rng(ALPHABET_SEED + 1)
    radius = np.sqrt(rng.uniform(0, 1, 468))
    angle = rng.uniform(0, 2 * np.pi, 468)
    face = np.stack(
        [0.38 * radius * np.cos(angle), 0.5 * radius * np.sin(angle), -0.25 * (1 - radius**2)], -1
    )
    opening, smile = np.zeros((468, 3)), np.zeros((468, 3))

    def arc(indices: list[int], left: float, right: float, height: float, below: float) -> None:
        """Place lip points along an arc; ``below`` is the drop of this lip as the mouth opens."""
        t = np.linspace(left, right, len(indices))
        face[indices, 0] = 0.22 * t
        face[indices, 1] = 0.27 + height * (1 - t**2) ** 0.7
        face[indices, 2] = -0.18 + 0.05 * t**2
        opening[indices, 1] = below * (1 - t**2) ** 0.5
        smile[indices, 0] = 0.03 * t
        smile[indices, 1] = -0.012 * t**2

    lips = landmarks.LIPS_LANDMARKS
    arc([lips[0], *lips[1:10], lips[10]], -1, 1, -0.045, -0.02)  # upper outer: 61 .. 291
    arc([lips[0], *lips[11:20], lips[10]][1:-1], -0.82, 0.82, 0.05, 0.06)  # lower outer
    arc([lips[20], *lips[21:30], lips[39]], -0.85, 0.85, -0.02, -0.03)  # upper inner: 78 .. 308
    arc(lips[30:39], -0.68, 0.68, 0.02, 0.07)  # lower inner
    return face, opening, smile


FACE_TEMPLATE, _MOUTH_OPENING, _SMILE = _build_face()

# MediaPipe pose points in face units relative to the nose (x toward the person's left = image
# right), and their z; 15/16 and 17..22 (wrists and hand points) are placed by the arms.
_POSE_TEMPLATE = np.array(
    [
        [0.00, 0.00, -0.9], [0.05, -0.08, -0.85], [0.09, -0.08, -0.85], [0.13, -0.08, -0.85],
        [-0.05, -0.08, -0.85], [-0.09, -0.08, -0.85], [-0.13, -0.08, -0.85], [0.3, -0.02, -0.4],
        [-0.3, -0.02, -0.4], [0.08, 0.18, -0.8], [-0.08, 0.18, -0.8], [0.75, 0.95, -0.2],
        [-0.75, 0.95, -0.2], [0.95, 2.0, -0.1], [-0.95, 2.0, -0.1], [0.9, 2.9, -0.3],
        [-0.9, 2.9, -0.3], [0.95, 3.05, -0.35], [-0.95, 3.05, -0.35], [0.9, 3.1, -0.35],
        [-0.9, 3.1, -0.35], [0.85, 3.0, -0.3], [-0.85, 3.0, -0.3], [0.5, 3.3, 0.0],
        [-0.5, 3.3, 0.0], [0.5, 4.8, 0.3], [-0.5, 4.8, 0.3], [0.5, 6.2, 0.8], [-0.5, 6.2, 0.8],
        [0.5, 6.35, 0.85], [-0.5, 6.35, 0.85], [0.5, 6.5, 0.5], [-0.5, 6.5, 0.5],
    ]
)  # fmt: skip
