"""The demo page served by `cnnlab-demo`: a Gradio app over `cnnlab.load` and Grad-CAM."""
