"""Settings of tiny models for fast tests: a few units per layer, 5-d voice and 4-d face features."""

TINY_MODEL = dict(
    audio_dim=5, video_dim=4, conv_filters=8, rnn_units=6, video_rnn_units=4, attention_units=6, dense_units=8
)
TINY_WINDOWS = dict(window_audio_frames=24, window_video_frames=4)
"""Fixed windows of the TFLite exports and the streaming predictor."""
