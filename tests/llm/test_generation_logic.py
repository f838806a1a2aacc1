"""Stop strings and sampling: pure logic, checked without a model."""
import numpy as np
import pytest

from opentransformer.errors import InvalidRequestError
from opentransformer.llm.generation import StopStrings
from opentransformer.llm.sampling import Sampler, SamplingParams


def feed(stops, pieces):
    s = StopStrings(stops)
    out = []
    for p in pieces:
        text, hit = s.push(p)
        out.append(text)
        if hit:
            return "".join(out), True
    return "".join(out) + s.flush(), False


def test_stop_string_split_across_pieces_never_leaks():
    text, hit = feed(["</answer>"], ["The answer", " is 4</", "ans", "wer> and more"])
    assert hit and text == "The answer is 4"


def test_partial_stop_prefix_is_released_when_it_diverges():
    s = StopStrings(["###"])
    assert s.push("a #") == ("a ", False)  # '#' is held: it could start '###'
    text, hit = feed(["###"], ["a #", "# b"])
    assert (text, hit) == ("a ## b", False)


def test_earliest_of_several_stops_wins():
    text, hit = feed(["\nUser:", "END"], ["x END y\nUser: z"])
    assert (text, hit) == ("x ", True)


def test_no_stops_passes_everything():
    assert feed([], ["a", "b"]) == ("ab", False)


def test_greedy_is_argmax():
    logits = np.array([0.1, 3.0, -1.0, 2.9], np.float32)
    assert Sampler(SamplingParams(temperature=0)).sample(logits, []) == 1


def test_same_seed_same_draws():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=1000).astype(np.float32)
    params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=123)
    a = [Sampler(params).sample(logits, []) for _ in range(3)]
    s = Sampler(params)
    b = [s.sample(logits, []) for _ in range(20)]
    assert a[0] == a[1] == a[2] == b[0]
    assert len(set(b)) > 1


def test_top_k_top_p_min_p_limit_candidates():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.04, 0.01], np.float64)).astype(np.float32)
    ids, _ = Sampler(SamplingParams(temperature=1, top_k=2, top_p=1, min_p=0)).candidates(logits)
    assert list(ids) == [0, 1]
    ids, _ = Sampler(SamplingParams(temperature=1, top_k=0, top_p=0.85, min_p=0)).candidates(logits)
    assert list(ids) == [0, 1, 2]
    ids, _ = Sampler(SamplingParams(temperature=1, top_k=0, top_p=1, min_p=0.1)).candidates(logits)
    assert list(ids) == [0, 1, 2]


def test_temperature_sharpens():
    logits = np.array([1.0, 0.0], np.float32)
    _, hot = Sampler(SamplingParams(temperature=2.0, top_k=0, top_p=1, min_p=0)).candidates(logits)
    _, cold = Sampler(SamplingParams(temperature=0.5, top_k=0, top_p=1, min_p=0)).candidates(logits)
    assert cold[0] > hot[0] > 0.5


def test_repeat_penalty_lowers_seen_tokens():
    logits = np.array([2.0, -1.0, 1.9], np.float32)
    s = Sampler(SamplingParams(temperature=0, repeat_penalty=1.5))
    out = s.apply_repeat_penalty(logits, [0, 1])
    assert out[0] == pytest.approx(2.0 / 1.5) and out[1] == pytest.approx(-1.5) and out[2] == pytest.approx(1.9)
    assert s.sample(logits, [0]) == 2


def test_smallest_repeat_penalty_keeps_probabilities_finite():
    """A seen token's positive logit divided by a tiny penalty overflowed float32 to inf, and the softmax's
    inf - inf made the draw fail on NaN probabilities (found by the server's fuzz test)."""
    logits = np.array([1.0e37, 30.0, -1.0, 29.0], np.float32)
    s = Sampler(SamplingParams(temperature=1.0, top_k=0, top_p=1, min_p=0, repeat_penalty=0.01, seed=0))
    _, probs = s.candidates(s.apply_repeat_penalty(logits, [0, 1]))
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0)
    assert s.sample(logits, [0, 1]) == 0


@pytest.mark.parametrize("kwargs", [dict(temperature=-1), dict(top_p=0), dict(min_p=1.0), dict(top_k=-2),
                                    dict(repeat_penalty=0), dict(repeat_penalty=1e-53)])
def test_bad_sampling_options_are_refused(kwargs):
    with pytest.raises(InvalidRequestError):
        SamplingParams(**kwargs)
