"""The playground's Gradio page: the tabs and their controls, wired to `Playground`. A bad
input is one message in the page's error box (the handlers raise `gr.Error`), never a
traceback; every handler is also an API endpoint (`gradio_client`), which the tests drive."""

from __future__ import annotations

from collections.abc import Callable

from cnnlab.analysis.kernels import PRESETS
from cnnlab.core.choices import PLAYGROUND_TABS
from cnnlab.core.errors import UserError
from cnnlab.demo import lessons
from cnnlab.demo.playground import Playground

# The arithmetic tab's boxes; it opens on the preset small enough to watch.
BOXES = ("W (input)", "F (kernel)", "P (padding)", "S (stride)", "dilation", "C_in", "C_out")
FIRST = next(iter(lessons.ARITHMETIC_PRESETS))


def _answer(call: Callable) -> Callable:
    """`call`, a UserError shown as the page's one-line message."""
    import functools

    import gradio as gr

    @functools.wraps(call)
    def handler(*args):
        try:
            return call(*args)
        except UserError as err:
            raise gr.Error(str(err)) from None

    return handler


RECEPTIVE = ("## Receptive fields\nEach sliding layer's receptive field (input pixels one output "
             "unit sees) and jump (input pixels between neighbouring units), along the longest "
             "path.")  # fmt: skip


def build(play: Playground, tab: str = PLAYGROUND_TABS[0], title: str = "cnnlab playground"):
    import gradio as gr

    # Gradio's copies of the answers (feature maps of 8 MB) are deleted after an hour.
    with gr.Blocks(title=title, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"# {title}\nThe lecture's demos, computed with torch: a kernel over a "
                    "photo, the arithmetic of a convolution, and (with `ckpt_path=`) the inside of "
                    "a network you trained.")  # fmt: skip
        with gr.Tabs(selected=tab):
            with gr.Tab("Image kernels", id=PLAYGROUND_TABS[0]):
                with gr.Row():
                    with gr.Column():
                        choice = gr.Dropdown(list(lessons.PHOTOS), value=lessons.PHOTOS[0],
                                             label="photo")  # fmt: skip
                        upload = gr.File(label="or your own image (read as predict reads it)",
                                         file_types=["image"])  # fmt: skip
                        preset = gr.Dropdown(list(PRESETS), value="Sobel x", label="preset kernel")
                        text = gr.Textbox(lessons.kernel_text("Sobel x"), lines=5,
                                          label="kernel: 3×3 or 5×5, one row per line")  # fmt: skip
                        with gr.Row():
                            row = gr.Number(100, label="cell row", precision=0)
                            col = gr.Number(100, label="cell column", precision=0)
                            bias = gr.Number(0, label="bias b")
                        go = gr.Button("Convolve", variant="primary")
                    with gr.Column():
                        shown = gr.Image(label="input", type="numpy", format="png")
                        summed = gr.Image(
                            label="feature map Σ_c k ⋆ im^c", type="numpy", format="png"
                        )
                channels = gr.Image(label="per channel", type="numpy", format="png")
                arithmetic = gr.Markdown()
                numbers = gr.File(label="the numbers (.npz: per_channel, summed, kernel)")
                preset.change(lessons.kernel_text, preset, text, api_name=False)
                go.click(_answer(play.kernel), [choice, upload, text, row, col, bias],
                         [shown, summed, channels, arithmetic, numbers], api_name="kernel",
                         preprocess=False)  # fmt: skip
                # The page opens on a worked example: Sobel x over the first photo.
                page.load(_answer(play.kernel), [choice, upload, text, row, col, bias],
                          [shown, summed, channels, arithmetic, numbers], api_name=False,
                          preprocess=False)  # fmt: skip
            with gr.Tab("Convolution arithmetic", id=PLAYGROUND_TABS[1]):
                presets = gr.Dropdown(list(lessons.ARITHMETIC_PRESETS), value=FIRST,
                                      label="preset")  # fmt: skip
                with gr.Row():
                    first = lessons.ARITHMETIC_PRESETS[FIRST]
                    boxes = [
                        gr.Number(v, label=n, precision=0)
                        for n, v in zip(BOXES, first, strict=True)
                    ]
                animate = gr.Checkbox(True, label="draw the windows (up to a padded 16×16 input)")
                compute = gr.Button("Compute", variant="primary")
                result = gr.Markdown()
                with gr.Row():
                    frames = gr.Image(
                        label="windows over the padded input → output", type="filepath"
                    )
                    pools = gr.Markdown()
                values = gr.JSON(label="numbers")
                presets.change(lambda p: list(lessons.ARITHMETIC_PRESETS[p]), presets, boxes,
                               api_name=False)  # fmt: skip
                # A pure function of its inputs: any number of calls at once.
                compute.click(_answer(play.arithmetic), [*boxes, animate],
                              [result, frames, pools, values], api_name="arithmetic",
                              preprocess=False, concurrency_limit=None)  # fmt: skip
                page.load(_answer(play.arithmetic), [*boxes, animate],
                          [result, frames, pools, values], api_name=False,
                          preprocess=False)  # fmt: skip
                gr.Markdown(RECEPTIVE)
                stack = gr.Dropdown(list(lessons.STACKS), value=lessons.STACKS[0], label="network")
                table, rows = gr.Markdown(), gr.JSON(label="rows")
                stack.change(_answer(play.receptive), stack, [table, rows], api_name="receptive")
                page.load(_answer(play.receptive), stack, [table, rows], api_name=False)
            if play.classifier is not None:
                _inside_tab(play, page)
    return page


def _inside_tab(play: Playground, page) -> None:
    import gradio as gr

    from cnnlab.analysis import inside

    model = play.classifier.model
    side = int(model.preprocessing.input_size)
    layers = list(inside.stages(model.net, (model.in_channels, side, side)))
    with gr.Tab("Inside the trained network", id=PLAYGROUND_TABS[2]):
        show = gr.Button("First-layer filters")
        filters, weights = gr.Image(label="filters", format="png"), gr.File(label="weights .npy")
        show.click(_answer(play.filters), None, [filters, weights], api_name="filters")
        image = gr.File(label="an image (read as predict reads it)", file_types=["image"])
        look = gr.Button("Feature maps and Grad-CAM")
        maps, cam = gr.Image(label="most active channels per stage", format="png"), gr.Image(
            label="Grad-CAM", format="png")  # fmt: skip
        look.click(_answer(play.stages), image, [maps, cam], api_name="stages", preprocess=False)
        with gr.Row():
            layer = gr.Dropdown(layers, value=layers[-1] if layers else None, label="stage")
            channel = gr.Number(0, label="channel", precision=0)
        rank = gr.Button("Test images that excite it most")
        crops = gr.Image(label="their receptive fields", format="png")
        rank.click(_answer(play.top), [layer, channel], crops, api_name="top")
        # The tab opens on the filters and on the last stage's channel 0 (cheap, no upload).
        page.load(_answer(play.filters), None, [filters, weights], api_name=False)
        page.load(_answer(play.top), [layer, channel], crops, api_name=False)
