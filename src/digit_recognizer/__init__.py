"""digit-recognizer: the Kaggle Digit Recognizer workflow, from fetch to submission."""

__version__ = "0.1.0"
