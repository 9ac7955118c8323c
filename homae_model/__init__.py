"""homae_model: the HOMAE network and everything around it (data, training, metrics).

Pure PyTorch/numpy; nothing here imports ROS. Data flow: `data/` -> `model.py` ->
`losses.py` / `metrics/`; at run time `inference.Predictor` turns an image into poses.
"""
