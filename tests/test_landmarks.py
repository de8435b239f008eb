import numpy as np

from aslfr_lib import landmarks as lm


def test_full_schema_matches_competition_order():
    assert len(lm.LANDMARK_COLUMNS) == 1629
    assert lm.ALL_COLUMNS[0] == "frame"
    # x block, then y, then z; each block face, left_hand, pose, right_hand.
    assert lm.LANDMARK_COLUMNS[0] == "x_face_0"
    assert lm.LANDMARK_COLUMNS[467] == "x_face_467"
    assert lm.LANDMARK_COLUMNS[468] == "x_left_hand_0"
    assert lm.LANDMARK_COLUMNS[489] == "x_pose_0"
    assert lm.LANDMARK_COLUMNS[522] == "x_right_hand_0"
    assert lm.LANDMARK_COLUMNS[543] == "y_face_0"
    assert lm.LANDMARK_COLUMNS[1086] == "z_face_0"
    assert lm.LANDMARK_COLUMNS[-1] == "z_right_hand_20"
    assert len(set(lm.LANDMARK_COLUMNS)) == 1629


def test_selected_columns_reference_order():
    cols = lm.SELECTED_COLUMNS
    assert len(cols) == lm.NUM_FEATURES == 164
    assert cols[:21] == [f"x_left_hand_{i}" for i in range(21)]
    assert cols[21:42] == [f"y_left_hand_{i}" for i in range(21)]
    assert cols[42:63] == [f"x_right_hand_{i}" for i in range(21)]
    assert cols[63:84] == [f"y_right_hand_{i}" for i in range(21)]
    lips = sorted(lm.LIPS_LANDMARKS)
    assert cols[84:124] == [f"x_face_{i}" for i in lips]
    assert cols[124:] == [f"y_face_{i}" for i in lips]
    assert set(cols) <= set(lm.LANDMARK_COLUMNS)


def test_mirror_permutation_is_an_involution_that_swaps_hands():
    perm = lm.MIRROR_PERMUTATION
    assert sorted(perm) == list(range(164))
    np.testing.assert_array_equal(perm[perm], np.arange(164))
    assert lm.SELECTED_COLUMNS[perm[0]] == "x_right_hand_0"
    assert lm.SELECTED_COLUMNS[perm[lm.SELECTED_COLUMNS.index("y_face_61")]] == "y_face_291"
    assert lm.SELECTED_COLUMNS[perm[lm.SELECTED_COLUMNS.index("x_face_0")]] == "x_face_0"
    assert lm.IS_X.sum() == 82
