"""The one vocabulary of feature keys.

TFDS features, tf.data elements, `keras.Input` names and serving signatures all
use these names, so a batch from the pipeline feeds a model and an export alike.
"""

IMAGE = "image"
TEXT = "text"
TOKEN_IDS = "token_ids"
AUDIO = "audio"
LABEL = "label"
# Optional int64 feature tagging each example with a stable id; never a model input.
EXAMPLE_ID = "example_id"

ALL = (IMAGE, TEXT, TOKEN_IDS, AUDIO, LABEL, EXAMPLE_ID)
