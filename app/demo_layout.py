"""The demo's page: its components top to bottom (``layout``) and which action each control runs (``wire``).

``app.demo.build_app`` builds the actions and calls both inside one ``gr.Blocks``; every action updates the same
outputs (state, status, ad picker, card, table, segment picker, map, the two exports).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from app.demo_catalog import MAX_FILE_MB
from creator.channels.presets import CHANNELS, DEFAULT_CHANNEL, channel_names

# the table on screen: the export keeps every score in its own column (app.demo_session.COLUMNS)
SHOWN = {"segment": "6%", "users": "5%", "persona": "12%", "title": "21%", "chars": "5%", "source": "8%",
         "judge vs original": "10%", "fact check": "10%", "fluency": "9%", "selling points used": "9%", "locked": "5%"}
INTRO = ("## hllm-creator: personalized titles per audience segment\n"
         "Load a catalog, pick an ad, set the constraints and press **Generate**. Every title is checked "
         "against the ad's facts; where nothing passes, the original title is served (under a channel, a "
         "shortened title of the ad's own words when the original breaks its rules). **Channel** sets the "
         "length limit and the platform's rules; `chars` shows each title's length against the limit. "
         "`fluency` shows whether a generated title reads as text: its score under a reference language model "
         "against the limit the catalog's own titles set (lower reads better; a title above it is not served).")


def layout(parts: Any, catalog_name: str, train: Callable[..., Any] | None) -> SimpleNamespace:
    """The page's components, top to bottom (inside an open ``gr.Blocks``)."""
    import gradio as gr

    ui = SimpleNamespace(state=gr.State(None))
    gr.Markdown(INTRO)
    gr.Markdown(f"Models: {parts.description}.", elem_id="models-info")
    with gr.Row():
        ui.load_sample = gr.Button(f"Load {catalog_name}", variant="primary", elem_id="load-sample")
        ui.upload = gr.File(label=f"Or upload ads + users (.jsonl / .csv, up to {MAX_FILE_MB} MB each)",
                            file_count="multiple", file_types=[".jsonl", ".csv"], height=120,
                            elem_id="upload")
        ui.load_upload = gr.Button("Load uploaded files", elem_id="load-upload")
        untrained = train is not None and not getattr(parts, "ready", lambda: True)()
        ui.train = gr.Button("Train the models", elem_id="train", visible=untrained)
    ui.status = gr.Markdown("Start by loading a catalog.", elem_id="status")
    with gr.Row():
        with gr.Column(scale=2):
            ui.ad_pick = gr.Dropdown(label="Ad", choices=[], elem_id="ad-picker", filterable=True)
            ui.card = gr.Markdown("_Pick an ad to see its selling points and facts._", elem_id="ad-card")
        with gr.Column(scale=1):
            form_controls(ui)
            ui.generate = gr.Button("Generate", variant="primary", elem_id="generate")
    ui.table = gr.Dataframe(headers=list(SHOWN), label="Segments", interactive=False, wrap=True,
                            column_widths=list(SHOWN.values()),
                            elem_id="segments")
    with gr.Row():
        ui.segment = gr.Dropdown(label="Segment", choices=[], allow_custom_value=True,
                                 elem_id="segment-picker")
        ui.regen = gr.Button("Regenerate this segment", elem_id="regenerate")
        ui.regen_all = gr.Button("Regenerate all unlocked", elem_id="regenerate-all")
        ui.lock = gr.Button("Lock / unlock its title", elem_id="lock")
        ui.download = gr.DownloadButton("Export CSV", elem_id="export")
        ui.google_download = gr.DownloadButton("Export Google Ads CSV", elem_id="export-google-ads",
                                               visible=False)
    ui.plot = gr.Plot(label="Segments map", elem_id="segment-map")
    return ui


def form_controls(ui: SimpleNamespace) -> None:
    """The constraints a marketer sets: channel, length, banned words, K, match threshold, candidates."""
    import gradio as gr

    ui.channel = gr.Dropdown(label="Channel (length limit and the platform's rules)",
                             choices=[(f"{n} (at most {CHANNELS[n].max_chars} characters)", n)
                                      for n in channel_names()],
                             value=DEFAULT_CHANNEL, elem_id="channel")
    ui.max_chars = gr.Slider(20, 200, value=120, step=5, label="Max title length (characters)",
                             elem_id="max-chars")
    ui.banned = gr.Textbox(label="Banned words (comma-separated)", elem_id="banned")
    ui.clusters = gr.Slider(1, 20, value=6, step=1, label="Segments (clusters K)",
                            elem_id="clusters")
    ui.threshold = gr.Slider(0.0, 1.0, value=0.0, step=0.05,
                             label="Match threshold (0 keeps all pairs)", elem_id="threshold")
    ui.candidates = gr.Slider(1, 8, value=4, step=1, label="Candidates per segment",
                              elem_id="candidates")


def wire(ui: SimpleNamespace, actions: dict[str, Callable[..., tuple]]) -> None:
    """Each button or picker to its action; every action updates the same outputs."""
    outputs = [ui.state, ui.status, ui.ad_pick, ui.card, ui.table, ui.segment, ui.plot, ui.download,
               ui.google_download]
    form = [ui.max_chars, ui.banned, ui.clusters, ui.threshold, ui.candidates, ui.channel]
    ui.load_sample.click(actions["load_sample"], [ui.state], outputs, api_name="load_sample")
    ui.load_upload.click(actions["load_upload"], [ui.upload, ui.state], outputs, api_name="load_upload")
    ui.ad_pick.input(actions["pick_ad"], [ui.ad_pick, ui.state], outputs, api_name="pick_ad")
    ui.generate.click(actions["generate"], [ui.ad_pick, *form, ui.state], outputs, api_name="generate")
    ui.regen.click(actions["regenerate"], [ui.segment, *form, ui.state], outputs, api_name="regenerate")
    ui.regen_all.click(actions["regenerate_all"], [*form, ui.state], outputs, api_name="regenerate_all")
    ui.lock.click(actions["lock"], [ui.segment, ui.state], outputs, api_name="lock")
    ui.train.click(actions["train"], [ui.state], outputs, api_name="train")
