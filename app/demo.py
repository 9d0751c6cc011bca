"""``hllm-creator demo``: a Gradio app where a marketer sees and steers personalized titles per segment.

    hllm-creator demo
    hllm-creator demo --data my_catalog/ --artifacts runs/demo/artifacts --port 7860 --auth ana:s3cret
    hllm-creator demo --config app/configs/demo.yaml

It opens on the bundled Office Products sample and the tiny trained models in ``--artifacts``
(trained there on first start if missing, with progress bars), bound to 127.0.0.1 unless ``--host``
says otherwise; ``--share`` is off unless asked. The app holds no model logic: every title comes from
``creator.pipeline.catalog.generate_for_catalog`` through ``app.demo_session.DemoSession``.
"""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.demo_catalog import MAX_FILE_MB, load_path, load_sample, load_uploads
from app.demo_layout import SHOWN, layout, wire
from app.demo_session import Constraints, DemoSession, PartsSource
from creator.config import run_verb
from creator.records.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_ARTIFACTS = "runs/demo/artifacts"


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
            row["fact_check_summary"], row["fluency"], _clip(row["selling_points_used"], 90) or "-", row["locked"]]


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


NO_CHANGE = 7  # outputs after (state, status) that an action leaves as they are when it fails


def view(s: DemoSession, status: str, export_dir: Path, *, with_map: bool = False, segment: Any = None) -> tuple:
    """Every output of an action, from the session's state: the ad picker, card, table, segments, map, exports."""
    import gradio as gr
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


def guarded_by(session_of: Callable[[Any], DemoSession]) -> Callable[[Callable[..., tuple]], Callable[..., tuple]]:
    """A decorator for actions: an error becomes one readable status line (the traceback goes to the log only)."""
    import gradio as gr

    def guarded(fn: Callable[..., tuple]) -> Callable[..., tuple]:
        @functools.wraps(fn)  # gradio reads the signature (e.g. a gr.Progress parameter) through __wrapped__
        def run(*args: Any) -> tuple:
            state = next((a for a in args if isinstance(a, DemoSession)), None)
            try:
                return fn(*args)
            except Exception as err:  # shown as one readable line; the traceback goes to the log only
                logger.warning("demo action failed: %s", err, exc_info=not isinstance(err, ValueError))
                s = session_of(state)
                return (s, readable(err), *(gr.update() for _ in range(NO_CHANGE)))
        return run
    return guarded


def catalog_status(s: DemoSession) -> str:
    cat = s.catalog
    warn = f" {len(cat.warnings)} warnings (see the server log)." if cat.warnings else ""
    return (f"Loaded **{s.catalog_name}**: {len(cat.ads):,} ads, {len(cat.users):,} users.{warn} "
            "Pick an ad.")


def generated_status(s: DemoSession) -> str:
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
    return status


def constraints(max_chars, banned, clusters, threshold, candidates, channel) -> Constraints:
    return Constraints.from_form(max_chars, banned, clusters, threshold, candidates, channel)


def catalog_actions(session_of: Callable[[Any], DemoSession], show: Callable[..., tuple],
                    catalog_loader: Callable[[], Any], catalog_name: str) -> dict[str, Callable[..., tuple]]:
    """Load the opening catalog or uploaded files, pick an ad."""
    guarded = guarded_by(session_of)
    opening: dict[str, Any] = {}  # the opening catalog, loaded once and shared read-only by every tab

    @guarded
    def on_load_sample(state):
        s = session_of(state)
        if "catalog" not in opening:
            opening["catalog"] = catalog_loader()
        s.load(opening["catalog"], catalog_name)
        return show(s, catalog_status(s))

    @guarded
    def on_load_upload(files, state):
        s = session_of(state)
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        cat = load_uploads(paths)
        s.load(cat, cat.source)
        return show(s, catalog_status(s))

    @guarded
    def on_pick(ad_id, state):
        s = session_of(state)
        s.pick(ad_id)
        return show(s, f"Ad **{s.ad.ad_id}** picked. Set the constraints and press Generate.")

    return {"load_sample": on_load_sample, "load_upload": on_load_upload, "pick_ad": on_pick}


def title_actions(session_of: Callable[[Any], DemoSession], show: Callable[..., tuple],
                  train: Callable[..., Any] | None) -> dict[str, Callable[..., tuple]]:
    """Generate, regenerate one segment or all, lock a title, train missing models."""
    import gradio as gr

    guarded = guarded_by(session_of)
    progress_bar = gr.Progress()

    @guarded
    def on_generate(ad_id, max_chars, banned, clusters, threshold, candidates, channel, state):
        s = session_of(state)
        s.pick(ad_id) if ad_id else None
        s.generate(constraints(max_chars, banned, clusters, threshold, candidates, channel))
        return show(s, generated_status(s), with_map=True)

    @guarded
    def on_regenerate(segment, max_chars, banned, clusters, threshold, candidates, channel, state):
        s = session_of(state)
        done = s.regenerate(constraints(max_chars, banned, clusters, threshold, candidates, channel),
                            None if segment in (None, "", "all") else int(segment))
        plural = "s" if len(done) != 1 else ""
        return show(s, f"Regenerated segment{plural} {', '.join(map(str, done)) or '-'}.",
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
        return show(s, f"Segment {seg} {'locked' if s.rows[seg].locked else 'unlocked'}.", segment=seg)

    @guarded
    def on_train(state, progress=progress_bar):
        s = session_of(state)
        if train is None:
            raise RuntimeError("this app was started without a training path; "
                               "pass --artifacts with trained models")
        names = train(lambda frac, desc: progress(frac, desc=desc))
        return show(s, f"Models ready (trained: {', '.join(names) or 'nothing, all present'}).")

    return {"generate": on_generate, "regenerate": on_regenerate, "regenerate_all": on_regenerate_all,
            "lock": on_lock, "train": on_train}


def build_app(parts: PartsSource, *, catalog_loader: Callable[[], Any] = load_sample,
              catalog_name: str = "the bundled sample", train: Callable[..., Any] | None = None) -> Any:
    """The Blocks app. ``parts`` gives the trained models; ``train(progress)`` trains missing ones."""
    import faiss
    import gradio as gr

    # The demo clusters at most MAX_USERS users: one faiss thread beats OpenMP's start-up and spinning
    # on a busy 2-core machine (k-means of 1,000 x 16 into 4: 1 ms with one thread, 2.6 s with two).
    faiss.omp_set_num_threads(1)
    export_dir = Path(tempfile.mkdtemp(prefix="hllm-demo-"))

    def session_of(state: DemoSession | None) -> DemoSession:
        return state if state is not None else DemoSession(parts)

    def show(s: DemoSession, status: str, **kw: Any) -> tuple:
        return view(s, status, export_dir, **kw)

    actions = {**catalog_actions(session_of, show, catalog_loader, catalog_name),
               **title_actions(session_of, show, train)}
    with gr.Blocks(title="hllm-creator demo") as demo:
        wire(layout(parts, catalog_name, train), actions)
    return demo


@dataclass
class DemoConfig:
    """``hllm-creator demo``: the catalog it opens on, the trained models, and where it listens."""

    data: str | None = field(default=None, metadata={
        "help": "catalog to open on (default: the bundled Office Products sample)"})
    format: str = field(default="auto", metadata={"help": "format of --data (default: detect)"})
    artifacts: str = field(default=DEFAULT_ARTIFACTS, metadata={"help": "trained models (trained here if missing)"})
    no_train: bool = field(default=False, metadata={"help": "do not train missing models on start"})
    host: str = field(default="127.0.0.1", metadata={"help": "address to bind (default 127.0.0.1: this machine only)"})
    port: int = field(default=7860, metadata={"help": "port (default 7860)"})
    share: bool = field(default=False, metadata={"help": "also open a public gradio.live link (off by default)"})
    auth: str | None = field(default=None, metadata={"help": "ask for this username and password (USER:PASS)",
                                                      "metavar": "USER:PASS"})
    fluency_gate: str = field(default="auto", metadata={
        "help": "the guard's fluency rule (docs/fluency.md): auto (Gemma 3 270M when installed, else the catalog "
                "LM in ARTIFACTS/lm), off, gemma-270m or a folder with a causal LM"})
    fluency_percentile: float = field(default=95.0, metadata={
        "help": "the gate's limit: this percentile of the catalog titles' excess NLL"})

    def __post_init__(self) -> None:
        if self.auth:
            user, sep, password = self.auth.partition(":")
            if not sep or not user or not password:
                raise ValueError("--auth must be USER:PASS, e.g. --auth ana:s3cret")

    @property
    def credentials(self) -> tuple[str, str] | None:
        if not self.auth:
            return None
        user, _, password = self.auth.partition(":")
        return user, password


def parse_config(argv: Sequence[str] | None = None) -> DemoConfig:
    """``DemoConfig`` from defaults, then ``--config YAML``, then the flags in ``argv``."""
    from creator.config import parse

    (cfg,) = parse([DemoConfig], argv, description=__doc__.split("\n\n")[0],
                   epilog="examples:\n" + __doc__.split("\n\n")[1])
    return cfg


def train_on_start(cfg: DemoConfig, data: str, fmt: str) -> None:
    """Train the models missing from ``cfg.artifacts`` (unless ``cfg.no_train``), with a progress bar."""
    from app.demo_artifacts import missing_stages, train_missing, unavailable

    todo = missing_stages(cfg.artifacts)
    if not todo or cfg.no_train:
        return
    absent = unavailable(todo)
    if absent:
        print("warning: cannot train the demo's models here; missing entry points: "
              + ", ".join(s.module for s in absent), file=sys.stderr)
        return
    from tqdm.auto import tqdm

    with tqdm(total=100, desc="first start: training the tiny models", unit="%") as bar:
        def step(frac: float, desc: str) -> None:
            bar.set_postfix_str(desc)
            bar.update(round(100 * frac) - bar.n)

        train_missing(cfg.artifacts, data, fmt, step)


def demo_fluency(cfg: DemoConfig) -> Any:
    """The fluency gate of ``cfg`` (``app.demo_fluency.DemoFluency``), or None when off."""
    if cfg.fluency_gate in ("off", "none", ""):
        return None
    from app.demo_fluency import DemoFluency

    root = Path(cfg.artifacts)
    try:
        return DemoFluency(cfg.fluency_gate, catalog_lm=root / "lm", cache_dir=root / "fluency",
                           percentile=cfg.fluency_percentile)
    except DataError as err:
        if cfg.fluency_gate != "auto":
            raise
        print(f"warning: no fluency gate ({err}); titles are checked for facts only", file=sys.stderr)
        return None


def run(cfg: DemoConfig) -> int:
    """Train what is missing, build the app and serve it until stopped."""
    from app.demo_artifacts import ArtifactParts, train_missing

    data = cfg.data or str(Path(__file__).resolve().parents[1] / "examples" / "office_products_sample")
    fmt = cfg.format if cfg.data else "jsonl"
    train_on_start(cfg, data, fmt)
    parts = ArtifactParts(cfg.artifacts, fluency=demo_fluency(cfg))
    loader = (lambda: load_path(cfg.data, cfg.format)) if cfg.data else load_sample
    if parts.fluency is not None and parts.fluency.enabled:
        # calibrate the gate on the opening catalog while the page loads, so the first Generate does not wait
        threading.Thread(target=lambda: parts.fluency.gate(list(loader().ads.values())), daemon=True).start()
    name = Path(cfg.data).name if cfg.data else "the bundled sample"
    demo = build_app(parts, catalog_loader=loader, catalog_name=name,
                     train=lambda progress: train_missing(cfg.artifacts, data, fmt, progress))
    print(f"hllm-creator demo on http://{cfg.host}:{cfg.port} (models: {parts.description})")
    demo.launch(server_name=cfg.host, server_port=cfg.port, share=cfg.share, auth=cfg.credentials,
                max_file_size=f"{MAX_FILE_MB}mb", show_error=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_verb(parse_config, run, argv)


if __name__ == "__main__":
    sys.exit(main())
