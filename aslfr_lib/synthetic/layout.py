"""The competition's file layout: metadata tables and the landmark folders they list."""

TRAIN_CSV = "train.csv"
SUPPLEMENTAL_CSV = "supplemental_metadata.csv"
METADATA_COLUMNS = ["path", "file_id", "sequence_id", "participant_id", "phrase"]
SPLITS = {  # split -> (metadata file, landmark folder)
    "train": (TRAIN_CSV, "train_landmarks"),
    "supplemental": (SUPPLEMENTAL_CSV, "supplemental_landmarks"),
}
