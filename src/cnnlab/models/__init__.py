"""Networks. Every one has the same anatomy, `features → classifier`, and its model config names
the head and the Grad-CAM layer as dotted submodule paths (`head`, `cam_layer`)."""
