"""The HTTP API over tiny real models: batched users with their own preferences."""

import threading

import pytest
import torch
from fastapi.testclient import TestClient

from conftest import make_tiny_llama
from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.decoding import DecodingConfig, GuidedDecoder, PreferenceGuide
from uniarm.serving.app import create_app

OBJECTIVES = ("helpful", "harmless")


@pytest.fixture(scope="module")
def decoder(tokenizer):
    base = make_tiny_llama(tokenizer, seed=0)
    arm = PreferenceARM(make_tiny_llama(tokenizer, seed=1), tokenizer, OBJECTIVES, AdapterConfig())
    torch.manual_seed(5)
    with torch.no_grad():
        for p in arm.trainable_parameters():
            p.normal_(std=0.5)
    return GuidedDecoder(
        base,
        tokenizer,
        [PreferenceGuide(arm, tokenizer)],
        DecodingConfig(max_new_tokens=6, batch_size=8),
    )


@pytest.fixture
def client(decoder):
    app = create_app(decoder, {"base_model": "tiny", "method": "uniarm"}, max_wait_s=0.3)
    with TestClient(app) as c:
        yield c


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and "Compare three preferences" in page.text
    info = client.get("/v1/info").json()
    assert info["objectives"] == list(OBJECTIVES) and info["method"] == "uniarm"


def test_concurrent_users_share_a_batch_and_match_lone_decoding(client, decoder):
    prefs = [{"helpful": 1.0}, {"helpful": 0.5, "harmless": 0.5}, {"harmless": 1.0}]
    replies = [None] * 3

    def call(i):
        replies[i] = client.post("/v1/generate", json={"prompt": "Hello", "preference": prefs[i]})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    health = client.get("/healthz").json()
    assert health["rows"] == 3 and health["batches"] < 3  # at least two shared a batch
    for pref, reply in zip(([1.0, 0.0], [0.5, 0.5], [0.0, 1.0]), replies, strict=True):
        alone = decoder.generate(["Hello"], [pref])[0]
        assert reply.json()["text"] == alone.text
        assert reply.json()["new_tokens"] == len(alone.token_ids)


@pytest.mark.parametrize(
    "body,message",
    [
        ({"prompt": "hi", "preference": {"helpful": 0.7, "harmless": 0.7}}, "sums to"),
        ({"prompt": "hi", "preference": {"funny": 1.0}}, "unknown objective"),
        ({"prompt": "hi"}, "needs a preference"),
        ({"preference": [0.5, 0.5]}, "exactly one of"),
        ({"prompt": "hi", "preference": [0.5, 0.5], "max_new_tokens": 0}, "out of range"),
        ({"prompt": "hi", "preference": [0.5, 0.5], "top_p": 2}, "top_p"),
    ],
)
def test_bad_requests_get_a_clear_400(client, body, message):
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"prompt": "hi", "preference": "helpful"}, "preference"),
        ({"prompt": 3, "preference": [0.5, 0.5]}, "prompt"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ],
)
def test_schema_errors_get_the_same_error_and_fix_body(client, body, field):
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert set(payload) == {"error", "fix"}
    assert f"{field}:" in payload["error"] and "/v1/info" in payload["fix"]


def test_a_body_that_is_not_json_gets_the_same_error_and_fix_body(client):
    response = client.post(
        "/v1/generate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and set(response.json()) == {"error", "fix"}


def test_one_preference_batches_merge_once_and_stopping_gives_the_arm_back(decoder):
    (guide,) = decoder.guides
    arm = guide.arm
    decoder.release()
    before = {k: v.clone() for k, v in arm.model.state_dict().items()}
    merges = guide.merges
    app = create_app(decoder, {"base_model": "tiny", "method": "uniarm"}, max_wait_s=0.0)
    with TestClient(app) as c:
        for _ in range(2):  # one request at a time: each batch holds one preference
            reply = c.post("/v1/generate", json={"prompt": "Hello", "preference": [0.5, 0.5]})
            assert reply.status_code == 200
        assert guide.merges == merges + 1 and arm.merged == (0.5, 0.5)  # kept between batches
    assert arm.merged is None  # the server's stop released it
    after = arm.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_a_misspelt_setting_is_refused_not_ignored(client):
    response = client.post("/v1/generate", json={"prompt": "hi", "max_tokens": 2})
    assert response.status_code == 422 and "max_tokens" in response.json()["error"]


def test_beta_and_stop_are_honoured_like_the_decoder_does(client, decoder):
    import dataclasses

    bad = client.post("/v1/generate", json={"prompt": "hi", "preference": [0.5, 0.5], "beta": -1})
    assert bad.status_code == 400 and "beta" in bad.json()["error"]

    full = decoder.generate(["Hello"], [[0.5, 0.5]])[0].text
    stop = full[2:4]  # a string the unstopped reply contains
    body = {"prompt": "Hello", "preference": [0.5, 0.5], "stop": [stop], "beta": 0.5}
    reply = client.post("/v1/generate", json=body).json()
    config = dataclasses.replace(decoder.config, stop=[stop], beta=0.5)
    alone = decoder.generate(["Hello"], [[0.5, 0.5]], config=config)[0]
    assert reply["text"] == alone.text and reply["finish_reason"] == alone.finish_reason


def test_a_base_only_server_refuses_a_preference(tokenizer):
    base = GuidedDecoder(make_tiny_llama(tokenizer, seed=0), tokenizer)
    with TestClient(create_app(base)) as c:
        response = c.post("/v1/generate", json={"prompt": "hi", "preference": {"helpful": 1}})
        assert response.status_code == 400 and "--arm" in response.json()["fix"]
        assert c.post("/v1/generate", json={"prompt": "hi", "max_new_tokens": 2}).status_code == 200
