"""Reading photos of handwritten digits: preprocessing, segmentation, the pipeline, the sheet."""
