"""``hllm-creator demo``: a Gradio app where a marketer sees and steers personalized titles per segment.

    hllm-creator demo
    hllm-creator demo --data my_catalog/ --artifacts runs/demo/artifacts --port 7860 --auth ana:s3cret

It opens on the bundled Office Products sample and the tiny trained models in ``--artifacts``
(trained there on first start if missing, with progress bars), bound to 127.0.0.1 unless ``--host``
says otherwise; ``--share`` is off unless asked. The app holds no model logic: every title comes from
``creator.pipeline.catalog.generate_for_catalog`` through ``app.demo_session.DemoSession``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.demo_catalog import MAX_FILE_MB, load_path, load_sample, load_uploads
from app.demo_session import Constraints, DemoSession, PartsSource
from creator.channels.presets import CHANNELS, DEFAULT_CHANNEL, channel_names
from creator.records.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_ARTIFACTS = "runs/demo/artifacts"
# the table on screen: the export keeps every score in its own column (app.demo_session.COLUMNS)
SHOWN = {"segment": "7%", "users": "6%", "persona": "15%", "title": "21%", "chars": "5%", "source": "10%",
         "judge vs original": "10%", "fact check": "10%", "selling points used": "10%", "locked": "6%"}
INTRO = ("## hllm-creator: personalized titles per audience segment\n"
         "Load a catalog, pick an ad, set the constraints and press **Generate**. Every title is checked "
         "against the ad's facts; where nothing passes, the original title is served (under a channel, a "
         "shortened title of the ad's own words when the original breaks its rules). **Channel** sets the "
         "length limit and the platform's rules; `chars` shows each title's length against the limit.")


def readable(err: BaseException) -> str:
    """What the status box shows for an error: the message for expected ones, never a traceback."""
    if isinstance(err, DataError):
        return f"**Could not use the data.** {err}"
    if isinstance(err, (ValueError, RuntimeError)):
        return f"**Cannot do that yet.** {err}"
    return (f"**Something went wrong** ({type(err).__name__}: {str(err)[:300]}). "
            "The details are in the server log.")


def ad_card(session: DemoSession) -> str:
    ad = session.ad
    if ad is None:
        return "_Pick an ad to see its selling points and facts._"
    points = "\n".join(f"- {p}" for p in ad.selling_points) or "- _none found in the description_"
    facts = ", ".join(f"`{f.text}`" for f in ad.facts) or "_none_"
    return (f"**{ad.title}**  \nbrand: {ad.brand or '-'} · id: {ad.ad_id}\n\n"
            f"**Selling points**\n{points}\n\n**Facts a title may repeat but never change:** {facts}")


def shown_row(row: dict[str, Any]) -> list[Any]:
    """A row of the on-screen table from a ``DemoSession.table()`` row."""
    judged = "-"
    if row["judge"] is not None:
        judged = f"{row['judge']:.3f} vs {row['original_judge']:.3f} ({row['lift']:+.3f})"
    return [row["segment"], row["users"], row["persona"], row["title"], row["chars"], row["source"], judged,
            row["fact_check_summary"], _clip(row["selling_points_used"], 90) or "-", row["locked"]]


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3].rsplit(" ", 1)[0] + "..."


def segment_map(session: DemoSession) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy, labels = session.projection()
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=90)
    cmap = plt.get_cmap("tab20")
    for i, seg in enumerate(sorted(set(labels.tolist()))):
        pts = xy[labels == seg]
        ax.scatter(pts[:, 0], pts[:, 1], s=9, alpha=0.7, color=cmap(i % 20),
                   label=f"segment {seg} ({len(pts)})")
    ax.set_xlabel("first principal axis of the user vectors")
    ax.set_ylabel("second axis")
    ax.set_title("Users by segment")
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2 if len(set(labels.tolist())) > 8 else 1)
    fig.tight_layout()
    plt.close(fig)
    return fig


def build_app(parts: PartsSource, *, catalog_loader: Callable[[], Any] = load_sample,
              catalog_name: str = "the bundled sample", train: Callable[..., Any] | None = None) -> Any:
    """The Blocks app. ``parts`` gives the trained models; ``train(progress)`` trains missing ones."""
    import faiss
    import gradio as gr

    # The demo clusters at most MAX_USERS users: one faiss thread beats OpenMP's start-up and spinning
    # on a busy 2-core machine (k-means of 1,000 x 16 into 4: 1 ms with one thread, 2.6 s with two).
    faiss.omp_set_num_threads(1)
    export_dir = Path(tempfile.mkdtemp(prefix="hllm-demo-"))
    progress_bar = gr.Progress()

    def session_of(state: DemoSession | None) -> DemoSession:
        return state if state is not None else DemoSession(parts)

    def view(s: DemoSession, status: str, *, with_map: bool = False, segment: Any = None) -> tuple:
        import pandas as pd

        ads = s.ad_choices()
        table = pd.DataFrame([shown_row(r) for r in s.table()], columns=list(SHOWN))
        segments = [(f"segment {r['segment']} ({r['users']} users){' - locked' if r['locked'] else ''}",
                     r["segment"]) for r in s.table()]
        # one folder per tab, so two marketers on the same ad never overwrite each other's export
        export = google = None
        if s.rows:
            folder = export_dir / f"tab{id(s):x}"
            export = s.export_csv(folder / f"creatives_ad{s.ad.ad_id}.csv")
            google = s.export_google_ads(folder / f"google_ads_ad{s.ad.ad_id}.csv")
            if google is not None and google.incomplete:
                status += (f"  \n**Google Ads export:** {len(google.incomplete)} of {len(s.rows)} ad groups have "
                           "fewer than 3 headlines or 2 descriptions that pass the guard; add some in Google Ads "
                           "Editor before posting.")
        return (s, status, gr.update(choices=ads, value=s.ad.ad_id if s.ad else None), ad_card(s),
                table, gr.update(choices=segments, value=segment if segment in s.rows else
                                 (segments[0][1] if segments else None)),
                segment_map(s) if with_map and s.rows else gr.update(),
                str(export) if export else None,
                gr.update(value=str(google.path), visible=True) if google else gr.update(value=None, visible=False))

    def guarded(fn: Callable[..., tuple]) -> Callable[..., tuple]:
        @functools.wraps(fn)  # gradio reads the signature (e.g. a gr.Progress parameter) through __wrapped__
        def run(*args: Any) -> tuple:
            state = next((a for a in args if isinstance(a, DemoSession)), None)
            try:
                return fn(*args)
            except Exception as err:  # shown as one readable line; the traceback goes to the log only
                logger.warning("demo action failed: %s", err, exc_info=not isinstance(err, ValueError))
                s = session_of(state)
                return (s, readable(err), gr.update(), gr.update(), gr.update(), gr.update(), gr.update(),
                        gr.update(), gr.update())
        return run

    def catalog_status(s: DemoSession) -> str:
        cat = s.catalog
        warn = f" {len(cat.warnings)} warnings (see the server log)." if cat.warnings else ""
        return (f"Loaded **{s.catalog_name}**: {len(cat.ads):,} ads, {len(cat.users):,} users.{warn} "
                "Pick an ad.")

    opening: dict[str, Any] = {}  # the opening catalog, loaded once and shared read-only by every tab

    @guarded
    def on_load_sample(state):
        s = session_of(state)
        if "catalog" not in opening:
            opening["catalog"] = catalog_loader()
        s.load(opening["catalog"], catalog_name)
        return view(s, catalog_status(s))

    @guarded
    def on_load_upload(files, state):
        s = session_of(state)
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        cat = load_uploads(paths)
        s.load(cat, cat.source)
        return view(s, catalog_status(s))

    @guarded
    def on_pick(ad_id, state):
        s = session_of(state)
        s.pick(ad_id)
        return view(s, f"Ad **{s.ad.ad_id}** picked. Set the constraints and press Generate.")

    def constraints(max_chars, banned, clusters, threshold, candidates, channel) -> Constraints:
        return Constraints.from_form(max_chars, banned, clusters, threshold, candidates, channel)

    @guarded
    def on_generate(ad_id, max_chars, banned, clusters, threshold, candidates, channel, state):
        s = session_of(state)
        s.pick(ad_id) if ad_id else None
        s.generate(constraints(max_chars, banned, clusters, threshold, candidates, channel))
        sources = Counter(r.creative.source for r in s.rows.values())
        n = sources["personalized"]
        status = (f"Generated for **{len(s.rows)} segments** ({s.constraints.channel}, at most "
                  f"{s.constraints.limit} characters): {n} personalized")
        if sources["shortened"] or sources["withheld"]:
            status += (f", {sources['shortened']} shortened, {sources['withheld']} withheld, "
                       f"{len(s.rows) - n - sources['shortened'] - sources['withheld']} keep the original title.")
        else:
            status += f", {len(s.rows) - n} keep the original title."
        if s.unlocked:
            status += (f" Segments {', '.join(map(str, s.unlocked))} were locked for another channel and "
                       "were regenerated.")
        return view(s, status, with_map=True)

    @guarded
    def on_regenerate(segment, max_chars, banned, clusters, threshold, candidates, channel, state):
        s = session_of(state)
        done = s.regenerate(constraints(max_chars, banned, clusters, threshold, candidates, channel),
                            None if segment in (None, "", "all") else int(segment))
        plural = "s" if len(done) != 1 else ""
        return view(s, f"Regenerated segment{plural} {', '.join(map(str, done)) or '-'}.",
                    segment=done[0] if len(done) == 1 else None)

    @guarded
    def on_regenerate_all(max_chars, banned, clusters, threshold, candidates, channel, state):
        return on_regenerate("all", max_chars, banned, clusters, threshold, candidates, channel, state)

    @guarded
    def on_lock(segment, state):
        s = session_of(state)
        if segment in (None, ""):
            raise ValueError("pick a segment to lock or unlock")
        seg = int(segment)
        s.lock(seg, not s.rows[seg].locked if seg in s.rows else True)
        return view(s, f"Segment {seg} {'locked' if s.rows[seg].locked else 'unlocked'}.", segment=seg)

    @guarded
    def on_train(state, progress=progress_bar):
        s = session_of(state)
        if train is None:
            raise RuntimeError("this app was started without a training path; "
                               "pass --artifacts with trained models")
        names = train(lambda frac, desc: progress(frac, desc=desc))
        return view(s, f"Models ready (trained: {', '.join(names) or 'nothing, all present'}).")

    with gr.Blocks(title="hllm-creator demo") as demo:
        state = gr.State(None)
        gr.Markdown(INTRO)
        gr.Markdown(f"Models: {parts.description}.", elem_id="models-info")
        with gr.Row():
            load_sample_btn = gr.Button(f"Load {catalog_name}", variant="primary", elem_id="load-sample")
            upload = gr.File(label=f"Or upload ads + users (.jsonl / .csv, up to {MAX_FILE_MB} MB each)",
                             file_count="multiple", file_types=[".jsonl", ".csv"], height=120,
                             elem_id="upload")
            load_upload_btn = gr.Button("Load uploaded files", elem_id="load-upload")
            untrained = train is not None and not getattr(parts, "ready", lambda: True)()
            train_btn = gr.Button("Train the models", elem_id="train", visible=untrained)
        status = gr.Markdown("Start by loading a catalog.", elem_id="status")
        with gr.Row():
            with gr.Column(scale=2):
                ad_pick = gr.Dropdown(label="Ad", choices=[], elem_id="ad-picker", filterable=True)
                card = gr.Markdown("_Pick an ad to see its selling points and facts._", elem_id="ad-card")
            with gr.Column(scale=1):
                channel = gr.Dropdown(label="Channel (length limit and the platform's rules)",
                                      choices=[(f"{n} (at most {CHANNELS[n].max_chars} characters)", n)
                                               for n in channel_names()],
                                      value=DEFAULT_CHANNEL, elem_id="channel")
                max_chars = gr.Slider(20, 200, value=120, step=5, label="Max title length (characters)",
                                      elem_id="max-chars")
                banned = gr.Textbox(label="Banned words (comma-separated)", elem_id="banned")
                clusters = gr.Slider(1, 20, value=6, step=1, label="Segments (clusters K)",
                                     elem_id="clusters")
                threshold = gr.Slider(0.0, 1.0, value=0.0, step=0.05,
                                      label="Match threshold (0 keeps all pairs)", elem_id="threshold")
                candidates = gr.Slider(1, 8, value=4, step=1, label="Candidates per segment",
                                       elem_id="candidates")
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
        table = gr.Dataframe(headers=list(SHOWN), label="Segments", interactive=False, wrap=True,
                             column_widths=list(SHOWN.values()),
                             elem_id="segments")
        with gr.Row():
            segment = gr.Dropdown(label="Segment", choices=[], allow_custom_value=True,
                                  elem_id="segment-picker")
            regen_btn = gr.Button("Regenerate this segment", elem_id="regenerate")
            regen_all_btn = gr.Button("Regenerate all unlocked", elem_id="regenerate-all")
            lock_btn = gr.Button("Lock / unlock its title", elem_id="lock")
            download = gr.DownloadButton("Export CSV", elem_id="export")
            google_download = gr.DownloadButton("Export Google Ads CSV", elem_id="export-google-ads",
                                                visible=False)
        plot = gr.Plot(label="Segments map", elem_id="segment-map")

        outputs = [state, status, ad_pick, card, table, segment, plot, download, google_download]
        form = [max_chars, banned, clusters, threshold, candidates, channel]
        load_sample_btn.click(on_load_sample, [state], outputs, api_name="load_sample")
        load_upload_btn.click(on_load_upload, [upload, state], outputs, api_name="load_upload")
        ad_pick.input(on_pick, [ad_pick, state], outputs, api_name="pick_ad")
        generate_btn.click(on_generate, [ad_pick, *form, state], outputs, api_name="generate")
        regen_btn.click(on_regenerate, [segment, *form, state], outputs, api_name="regenerate")
        regen_all_btn.click(on_regenerate_all, [*form, state], outputs, api_name="regenerate_all")
        lock_btn.click(on_lock, [segment, state], outputs, api_name="lock")
        train_btn.click(on_train, [state], outputs, api_name="train")
    return demo


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hllm-creator demo", description=__doc__.split("\n\n")[0],
                                epilog="examples:\n" + __doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="catalog to open on (default: the bundled Office Products sample)")
    p.add_argument("--format", default="auto", help="format of --data (default: detect)")
    p.add_argument("--artifacts", default=DEFAULT_ARTIFACTS, help="trained models (trained here if missing)")
    p.add_argument("--no-train", action="store_true", help="do not train missing models on start")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true",
                   help="also open a public gradio.live link (off by default)")
    p.add_argument("--auth", metavar="USER:PASS", help="ask for this username and password")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            print("error: --auth must be USER:PASS, e.g. --auth ana:s3cret", file=sys.stderr)
            return 2
        auth = (user, password)
    from app.demo_artifacts import ArtifactParts, missing_stages, train_missing, unavailable

    data = args.data or str(Path(__file__).resolve().parents[1] / "examples" / "office_products_sample")
    fmt = args.format if args.data else "jsonl"
    parts = ArtifactParts(args.artifacts)
    todo = missing_stages(args.artifacts)
    if todo and not args.no_train:
        absent = unavailable(todo)
        if absent:
            print("warning: cannot train the demo's models here; missing entry points: "
                  + ", ".join(s.module for s in absent), file=sys.stderr)
        else:
            from tqdm.auto import tqdm

            with tqdm(total=100, desc="first start: training the tiny models", unit="%") as bar:
                def step(frac: float, desc: str) -> None:
                    bar.set_postfix_str(desc)
                    bar.update(round(100 * frac) - bar.n)

                train_missing(args.artifacts, data, fmt, step)
    loader = (lambda: load_path(args.data, args.format)) if args.data else load_sample
    name = Path(args.data).name if args.data else "the bundled sample"
    demo = build_app(parts, catalog_loader=loader, catalog_name=name,
                     train=lambda progress: train_missing(args.artifacts, data, fmt, progress))
    print(f"hllm-creator demo on http://{args.host}:{args.port} (models: {parts.description})")
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth,
                max_file_size=f"{MAX_FILE_MB}mb", show_error=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
