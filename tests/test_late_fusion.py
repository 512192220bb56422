"""Late fusion (adarl_jax.report.late_fusion): the CNN's and the two per-speaker SVMs'
probabilities averaged per utterance, scored against a hand computation on synthetic folds."""

import json

import numpy as np
import pytest

from adarl_jax.report.late_fusion import MEMBERS, NAME, collect_systems, late_fusion_folds
from adarl_jax.report.report import write_report
from adarl_jax.report.seeds import summarize_seeds
from adarl_jax.workdir.layout import collect
from conftest import utt, write_fold

CNN, EGEMAPS, COMPARE = MEMBERS


def rows(labels, confidence, offset=0):
    """One utterance a label: `confidence` on the label, the rest spread evenly; the true
    emotions are 0, 1, 2, 3 in turn."""
    out = []
    for i, said in enumerate(labels):
        r = utt(i % 4, 1, [0.0], probs=[confidence if k == said else (1 - confidence) / 3
                                        for k in range(4)])
        r.update(utterance=offset + i, path=f"u{offset + i}.wav")
        out.append(r)
    return out


# Per member, the label each model gives utterances 0-3 (true labels 0, 1, 2, 3) and how sure:
#   adarl   0, 0, 2, 2 at 0.9   (sure, wrong on 1 and 3)
#   egemaps 1, 1, 2, 3 at 0.6
#   compare 1, 1, 2, 3 at 0.6
# Mean on utterance 0: p(0) = (0.9 + 2 * 0.4/3) / 3 = 0.389, p(1) = (0.1/3 + 2 * 0.6) / 3 = 0.411
# -> 1 (wrong); utterance 1: p(0) 0.389, p(1) 0.411 -> 1 (right); utterance 2: 2 (right);
# utterance 3: p(2) = (0.9 + 2 * 0.4/3) / 3 = 0.389, p(3) = 0.411 -> 3 (right). UA 3/4.
TEST = {CNN: ([0, 0, 2, 2], 0.9), EGEMAPS: ([1, 1, 2, 3], 0.6), COMPARE: ([1, 1, 2, 3], 0.6)}
# validation: adarl right on all four at 0.5, both SVMs say 0 for every one at 0.4: on an
# utterance of class t != 0, p(t) = (0.5 + 2 * 0.2) / 3 = 0.300 < p(0) = (0.5/3 + 2 * 0.4) / 3
# = 0.322 -> 0; on utterance 0 -> 0 (right): UA 1/4.
VAL = {CNN: ([0, 1, 2, 3], 0.5), EGEMAPS: ([0, 0, 0, 0], 0.4), COMPARE: ([0, 0, 0, 0], 0.4)}


def workdir(root, members=MEMBERS, val=True, val_speakers=("v1",)):
    for m in members:
        write_fold(root, m, 0, "t1", rows(*TEST[m]), val=rows(*VAL[m], offset=10) if val else None,
                   val_speakers=val_speakers)
    return root


def test_the_fused_probabilities_are_the_mean_of_the_members_by_hand(tmp_path):
    (fused,) = collect_systems(workdir(tmp_path))[NAME]
    assert fused["variant"] == NAME and fused["members"] == list(MEMBERS)
    np.testing.assert_allclose(fused["utterances"][0]["probs"],
                               [(0.9 + 0.8 / 3) / 3, (0.1 / 3 + 1.2) / 3, (0.1 / 3 + 0.8 / 3) / 3,
                                (0.1 / 3 + 0.8 / 3) / 3], atol=1e-6)
    assert [int(np.argmax(u["probs"])) for u in fused["utterances"]] == [1, 1, 2, 3]
    assert fused["test"]["ua"] == pytest.approx(0.75)
    assert fused["validation"]["ua"] == pytest.approx(0.25)


def test_the_report_scores_the_fusion_as_a_system(tmp_path):
    results = write_report(workdir(tmp_path), figures=False)
    assert results[NAME]["ua_pooled"] == pytest.approx(0.75)
    assert results[CNN]["ua_pooled"] == pytest.approx(0.5)
    text = (tmp_path / "report.md").read_text()
    assert f"| {NAME} | 1 | 0.750 | 0.750 |" in text
    # the validation speakers: adarl right on all four (UA 1), the fusion on one class (0.25)
    assert results[NAME]["val_ua_fold_mean"] == pytest.approx(0.25)
    assert f"| {CNN} | 1.000 |" in text and f"| {NAME} | 0.250 |" in text


def test_no_fusion_without_every_member_and_no_validation_figure_without_theirs(tmp_path):
    assert NAME not in collect_systems(workdir(tmp_path / "a", members=MEMBERS[:2]))
    (fused,) = late_fusion_folds(collect_systems(workdir(tmp_path / "b", val=False)))
    assert "validation" not in fused and "val_utterances" not in fused


def edit_record(w, member, change):
    path = next((w / member).glob("fold_00_*/result.json"))
    r = json.loads(path.read_text())
    change(r)
    path.write_text(json.dumps(r))


@pytest.mark.parametrize("member, change, why", [
    (COMPARE, lambda r: r.update(val_speakers=["v2"]), "fold 0: .* validated on different speakers"),
    (EGEMAPS, lambda r: r["utterances"][1].update(path="elsewhere.wav"),
     "fold 0: the runs scored different utterances")])
def test_members_of_other_splits_or_utterances_give_no_fused_row(tmp_path, caplog, member,
                                                                 change, why):
    w = workdir(tmp_path)
    edit_record(w, member, change)
    with pytest.raises(ValueError, match=why):
        late_fusion_folds(collect(w))
    assert NAME not in collect_systems(w)  # the report still stands, without the row
    assert "no adarl_late_fusion row" in caplog.text
    assert CNN in write_report(w, figures=False)


def test_the_svms_may_number_the_utterances_otherwise(tmp_path):
    """openSMILE may skip a file the CNN kept: the SVMs' indices then differ; the files match."""
    w = workdir(tmp_path)
    edit_record(w, EGEMAPS, lambda r: [u.update(utterance=u["utterance"] - 1) for u in r["utterances"]])
    assert collect_systems(w)[NAME][0]["test"]["ua"] == pytest.approx(0.75)


def test_seeds_summarise_the_fusion_per_seed(tmp_path):
    w0, w1 = workdir(tmp_path / "s0"), workdir(tmp_path / "s1")
    # seed 1: adarl says 1, 1, 2, 3 at 0.9 (UA 0.75), both SVMs 0, 1, 2, 2 at 0.6. Fused:
    # utterance 0: p(0) = (0.1/3 + 1.2)/3 = 0.411 > p(1) = (0.9 + 0.8/3)/3 = 0.389 -> 0, right;
    # utterance 3: p(2) = 0.411 > p(3) = 0.389 -> 2, wrong; 1 and 2 right: UA 0.75.
    edit_record(w1, CNN, lambda r: r.update(utterances=rows([1, 1, 2, 3], 0.9)))
    edit_record(w1, EGEMAPS, lambda r: r.update(utterances=rows([0, 1, 2, 2], 0.6)))
    edit_record(w1, COMPARE, lambda r: r.update(utterances=rows([0, 1, 2, 2], 0.6)))
    s = summarize_seeds([w0, w1])
    assert s[NAME]["ua_pooled"]["values"] == [0.75, 0.75]
    assert s[CNN]["ua_pooled"]["values"] == [0.5, 0.75]
    assert s[NAME]["ensemble"]["ua_pooled"] == pytest.approx(summarize_by_hand(w0, w1))


def summarize_by_hand(w0, w1):
    """UA of the seed ensemble of the fused system: per utterance the mean over seeds of the
    mean over members."""
    probs = []
    for w in (w0, w1):
        members = [json.loads(next((w / m).glob("fold_00_*/result.json")).read_text())["utterances"]
                   for m in MEMBERS]
        probs.append(np.mean([[u["probs"] for u in rs] for rs in members], axis=0))
    said = np.mean(probs, axis=0).argmax(1)
    return float(np.mean(said == np.arange(4)))
