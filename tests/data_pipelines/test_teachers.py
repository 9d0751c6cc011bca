"""Teacher backends over real HTTP (a server on 127.0.0.1 started here), the cache, reply repair, local HF."""

from __future__ import annotations

import asyncio
import json

import pytest

from creator.modeling.prompts import COT_TITLE_V1
from data_pipelines.teachers import CachedTeacher, ResponseCache, TeacherRequest, parse_json_reply
from data_pipelines.teachers.base import ReplyError, TeacherSampling, validate_reply
from data_pipelines.teachers.local_server import LocalChatServer
from data_pipelines.teachers.openai_http import OpenAIConfig, OpenAITeacher


def cot_request(key: str, title: str, **kw) -> TeacherRequest:
    messages = COT_TITLE_V1.render(
        max_added_chars="30",
        max_chars="120",
        profile="{}",
        history="1. Gel Pens",
        title=title,
        brand="Acme",
        selling_points="- smooth",
        facts="12-Pack",
    )
    return TeacherRequest(key=key, task="cot_title", messages=messages, **kw)


def teacher_for(server: LocalChatServer, **kw) -> OpenAITeacher:
    cfg = dict(
        model="local-model",
        base_url=server.base_url,
        api_key="test",
        timeout_s=0.5,
        max_retries=3,
        backoff_base_s=0.01,
        concurrency=4,
    )
    cfg.update(kw)
    return OpenAITeacher(OpenAIConfig(**cfg))


@pytest.mark.parametrize(
    ("reply", "title"),
    [
        ('{"suitable_user_info": "", "selling_points": [], "title": "Gel Pens"}', "Gel Pens"),
        ('<think>{"title": "draft"} maybe</think>{"title": "Gel Pens"}', "Gel Pens"),  # reasoning block
        (
            'step one...\n</think>\n\n```json\n{"title": "Gel Pens",}\n```',
            "Gel Pens",
        ),  # R1 prefix, fence, comma
        ("{'title': 'Gel Pens'}", "Gel Pens"),  # single quotes
        ('Here you go: {"Book Title Combined with Users": "x", "Personalized Title": "Gel Pens"', "Gel Pens"),
    ],
)
def test_replies_are_cleaned_repaired_and_mapped(reply: str, title: str) -> None:
    assert json.loads(validate_reply("cot_title", reply))["title"] == title


@pytest.mark.parametrize(
    "reply",
    ["", "Sure! Here is a title.", '<think>{"title": "x"}</think>', "[1, 2]", '{"selling_points": ["a"]}'],
)
def test_unusable_replies_raise(reply: str) -> None:
    with pytest.raises(ReplyError):
        validate_reply("cot_title", reply)


def test_truncated_reply_is_closed() -> None:
    assert parse_json_reply('{"a": "x", "b": ["y", "z') == {"a": "x", "b": ["y", "z"]}
    assert parse_json_reply('{"a": 1, "b":') == {"a": 1}


def test_http_teacher_happy_path_and_concurrency_bound() -> None:
    with LocalChatServer(latency_s=0.05) as server:
        teacher = teacher_for(server, concurrency=3)
        requests = [cot_request(str(i), f"Gel Pens No{i}, 12-Pack") for i in range(12)]
        results = asyncio.run(teacher.generate(requests))
        assert [r.key for r in results] == [str(i) for i in range(12)]
        assert all(r.ok and not r.failures and r.attempts == 1 for r in results)
        assert json.loads(results[5].text)["title"] == "Gel Pens No5, Ready for Your Desk"
        assert server.stats["completions"] == 12
        assert server.stats["max_in_flight"] == 3  # never more than --concurrency at once


def test_http_teacher_retries_every_fault_and_records_it() -> None:
    faults = [
        ("AD-TIMEOUT", ["timeout"]),
        ("AD-RATE", ["429", "500", "503"]),
        ("AD-TRUNC", ["truncated"]),
        ("AD-HTML", ["non_json", "bad_content"]),
        ("AD-THINK", ["reasoning"]),
        ("AD-DROP", ["drop"]),
        ("AD-DEAD", ["500"] * 10),
    ]
    with LocalChatServer(faults=faults, timeout_sleep_s=3) as server:
        teacher = teacher_for(server)
        names = ["AD-OK", "AD-TIMEOUT", "AD-RATE", "AD-TRUNC", "AD-HTML", "AD-THINK", "AD-DROP", "AD-DEAD"]
        results = {
            r.key: r for r in asyncio.run(teacher.generate([cot_request(n, f"{n} Pens") for n in names]))
        }
    kinds = {k: [f["kind"] for f in r.failures] for k, r in results.items()}
    assert kinds["AD-OK"] == [] and kinds["AD-THINK"] == []
    assert kinds["AD-TIMEOUT"] == ["timeout"]
    assert kinds["AD-RATE"] == ["rate_limited", "server_error_500", "server_error_503"]
    assert kinds["AD-TRUNC"] == ["bad_body"]
    assert kinds["AD-HTML"] == ["bad_body", "invalid_json"]
    assert kinds["AD-DROP"] == ["connection"]
    for name in names[:-1]:
        assert results[name].ok, (name, results[name])
        assert json.loads(results[name].text)["title"] == f"{name} Pens, Ready for Your Desk"
    dead = results["AD-DEAD"]
    assert not dead.ok and dead.error == "server_error_500" and dead.attempts == 4 and len(dead.failures) == 4


def test_client_errors_are_not_retried() -> None:
    with LocalChatServer(faults=[("AD-BAD", ["400", "400"])]) as server:
        result = asyncio.run(teacher_for(server).generate([cot_request("x", "AD-BAD Pens")]))[0]
    assert not result.ok and result.error == "client_error_400" and result.attempts == 1


def test_cache_answers_repeats_and_sends_duplicates_once(tmp_path) -> None:
    with LocalChatServer() as server:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        teacher = CachedTeacher(teacher_for(server), cache)
        reqs = [cot_request("a", "Same Pens"), cot_request("b", "Same Pens"), cot_request("c", "Other Pens")]
        first = asyncio.run(teacher.generate(reqs))
        assert server.stats["completions"] == 2 and teacher.stats == {"hits": 1, "misses": 2, "stored": 2}
        assert [r.key for r in first] == ["a", "b", "c"] and first[0].text == first[1].text
        again = CachedTeacher(teacher_for(server), ResponseCache(tmp_path / "cache.sqlite"))
        second = asyncio.run(again.generate(reqs))
        assert server.stats["completions"] == 2 and again.stats["hits"] == 3
        assert [r.text for r in second] == [r.text for r in first] and all(r.cached for r in second)
        # other sampling settings are another cache key
        other = cot_request("d", "Same Pens", sampling=TeacherSampling(temperature=0.0))
        asyncio.run(again.generate([other]))
        assert server.stats["completions"] == 3


@pytest.fixture(scope="module")
def tiny_hf_model(tmp_path_factory):
    """A 2-layer Llama (hidden 32) with a byte-level BPE tokenizer trained here on a few hundred strings."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from creator.modeling.builders import train_tokenizer

    corpus = [
        f'{{"title": "Gel Pens {i}", "selling_points": ["smooth ink"]}} user: profile {i}' for i in range(300)
    ]
    tok = train_tokenizer(corpus, vocab_size=320, min_frequency=1)
    tok.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant: {% endif %}"
    )
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )
    path = tmp_path_factory.mktemp("tiny-teacher")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_local_hf_teacher_runs_for_real(tiny_hf_model) -> None:
    from data_pipelines.teachers.hf_local import HFConfig, HFTeacher

    teacher = HFTeacher(HFConfig(model=str(tiny_hf_model), batch_size=2, max_retries=1))
    seen = []
    reqs = [
        cot_request(str(i), f"Pens {i}", sampling=TeacherSampling(temperature=0.0, max_tokens=12, seed=i))
        for i in range(3)
    ]
    results = asyncio.run(teacher.generate(reqs, on_result=lambda q, r: seen.append(q.key)))
    assert [r.key for r in results] == ["0", "1", "2"] and sorted(seen) == ["0", "1", "2"]
    for r in results:  # an untrained model writes no JSON: every attempt is recorded, nothing is lost
        assert r.ok or (r.error == "invalid_json" and [f["attempt"] for f in r.failures] == [1, 2])
    assert teacher.name == f"hf:{tiny_hf_model}"


def test_teacher_fact_checker_behind_the_guard_protocol() -> None:
    from creator.guard.check import ChainedFactChecker, Guard, RuleFactChecker
    from creator.records.types import Ad
    from data_pipelines.teachers.fact_check import TeacherFactChecker
    from data_pipelines.teachers.local_server import default_responder

    def responder(messages):
        if "Title to check:" in messages[-1]["content"]:
            bad = "Waterproof" in messages[-1]["content"].split("Title to check:")[1]
            return json.dumps({"supported": not bad, "unsupported_claims": ["waterproof"] if bad else [],
                               "reason": "the ad never says waterproof" if bad else "ok"})
        return default_responder(messages)

    ad = Ad(ad_id="p", title="Acme Gel Pens, 12-Pack", brand="Acme")
    with LocalChatServer(responder) as server:
        checker = ChainedFactChecker(RuleFactChecker(["Acme"]), TeacherFactChecker(teacher_for(server)))
        guard = Guard(fact_checker=checker)
        assert guard.check("Acme Gel Pens for Note Takers", ad).passed
        verdict = guard.check("Acme Gel Pens, Smooth and Waterproof", ad)
    assert [(f.rule, f.span) for f in verdict.failures] == [("ungrounded_claim", "waterproof")] * 2
    assert verdict.checker == "rules+teacher:openai:local-model"


def test_a_base_model_gets_few_shot_prompts_and_its_line_becomes_the_tasks_json(tiny_hf_model) -> None:
    """prompt_style fewshot (auto picks it for a tokenizer without a chat template): the prompt is built from
    the request's data, ends on the line the model must write, and that line is turned into the task's JSON."""
    from data_pipelines.teachers.hf_local import HFConfig, HFTeacher

    teacher = HFTeacher(HFConfig(model=str(tiny_hf_model), batch_size=2, max_retries=0, prompt_style="fewshot"))
    assert teacher.fewshot and teacher.uses_payload and teacher.name == f"hf-fewshot:{tiny_hf_model}"
    ad = {"ad_id": "a1", "title": "Gel Pens, 12-Pack", "brand": "Acme",
          "selling_points": ["smooth quick-drying ink", "comfortable rubber grip"], "facts": ["12-Pack"]}
    profile = {"long_term_interests": ["journaling", "planners"]}
    greedy = TeacherSampling(temperature=0.0, max_tokens=12, seed=0)
    cot = TeacherRequest(key="c", task="cot_title", messages=[], sampling=greedy,
                         payload={"ad": ad, "history": ["Dotted Journal"], "profile": profile, "max_chars": 120,
                                  "max_added_chars": 30})
    prof = TeacherRequest(key="p", task="profile", messages=[], payload={"history": ["Dotted Journal"]},
                          sampling=greedy)
    prompt = teacher._prompt(cot)
    assert prompt.endswith("Product: Gel Pens, 12-Pack\nSelling points:\n- smooth quick-drying ink\n"
                           "- comfortable rubber grip\nSelling point for this shopper:")
    assert "Shopper's interests: journaling, planners" in prompt.split("\n\n")[-1]
    assert teacher._prompt(prof).endswith("Purchases:\n- Dotted Journal\nInterests:")
    got = json.loads(teacher._reply(cot, " Smooth Quick-Drying Ink\nShopper's interests: x"))
    assert got == {"suitable_user_info": "journaling, planners", "selling_points": ["smooth quick-drying ink"],
                   "title": "Gel Pens, 12-Pack - Smooth Quick-Drying Ink"}  # the ad's title + the chosen point
    long = json.loads(teacher._reply(cot, "Smooth quick-drying ink that never smears on the page, even left-handed"))
    assert long["title"].startswith("Gel Pens, 12-Pack - Smooth quick-drying ink") and len(long["title"]) <= 17 + 30
    assert json.loads(teacher._reply(prof, "fountain pens, ink, journals\n"))["long_term_interests"] == [
        "fountain pens", "ink", "journals"]
    # the real model runs on those prompts; an untrained one may write an empty line: recorded, not lost
    results = asyncio.run(teacher.generate([cot, prof]))
    assert [r.key for r in results] == ["c", "p"]
    assert all(r.ok or (r.error == "invalid_json" and len(r.failures) == 1) for r in results)
    check = TeacherRequest(key="f", task="fact_check", messages=[], payload={"candidate": "x"}, sampling=greedy)
    with pytest.raises(ValueError, match="drop --llm-fact-check"):
        asyncio.run(teacher.generate([check]))
    chat = HFTeacher(HFConfig(model=str(tiny_hf_model)))  # this tokenizer has a chat template: auto keeps chat
    assert not chat.fewshot and not chat.uses_payload
