"""The one vocabulary of feature keys.

TFDS features, tf.data elements, `keras.Input` names and serving signatures all
use these names, so a batch from the pipeline feeds a model and an export alike.
"""

IMAGE = "image"
TEXT = "text"
TOKEN_IDS = "token_ids"
AUDIO = "audio"
LABEL = "label"

ALL = (IMAGE, TEXT, TOKEN_IDS, AUDIO, LABEL)
