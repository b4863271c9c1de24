"""The catalogue is refused at load, naming the file, the key and the problem."""

import copy
import re

import pytest
import yaml

from scoring.catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue, parse_catalogue

DOC = yaml.safe_load(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))


def broken(mutate):
    doc = copy.deepcopy(DOC)
    mutate(doc)
    return doc


def ind(doc, key):
    return next(i for i in doc["indicators"] if i["key"] == key)


CASES = [
    (lambda d: d["dimensions"]["brand"].update(weight=0.25), "dimensions: weights must sum to 1"),
    (lambda d: d["dimensions"].pop("social"), "dimensions: the system has 4 dimensions"),
    (lambda d: ind(d, "rd_intensity")["transform"].update(edges=[0.01, 0.03, 0.02, 0.05]),
     r"indicators\[0\]\.transform\.edges: must be strictly increasing"),
    (lambda d: ind(d, "debt_ratio")["transform"].update(points=[0, 30, 60, 80, 100]),
     r"indicators\[10\]\.transform\.points: must fall with the value"),
    (lambda d: ind(d, "valid_ip")["transform"].update(points=[0, 30]), r"indicators\[1\]\.transform\.points: need one more"),
    (lambda d: ind(d, "revenue_growth")["transform"].update(lo=1, hi=0), r"indicators\[6\]\.transform: a linear scale"),
    (lambda d: ind(d, "rd_intensity")["transform"].update(type="sigmoid"),
     r"indicators\[0\]\.transform: 'type' must be 'bands', 'linear', 'categories', found 'sigmoid'"),
    (lambda d: ind(d, "tax_credit_grade")["transform"]["points"].update(A=120), r"indicators\[8\]\.transform\.points\.A: must be at least 0 and at most 100"),
    (lambda d: ind(d, "awards_3y").update(weight="heavy"), r"indicators\[14\]\.weight: expected a number"),
    (lambda d: ind(d, "awards_3y").update(dimension="luck"), r"indicators\[14\]\.dimension: 'luck' is not one of"),
    (lambda d: ind(d, "awards_3y").update(key="astrology"), r"indicators\[14\]\.key: unknown indicator"),
    (lambda d: d["indicators"].pop(), r"indicators: the system has 19 indicators; missing penalties_3y"),
    (lambda d: d["negative_list"][7].update(params={"months": "three"}), r"negative_list\[7\]\.params\.months: expected a whole number"),
    (lambda d: d["negative_list"][0].update(rule="bad_vibes"), r"negative_list\[0\]\.rule: unknown rule 'bad_vibes'"),
    (lambda d: _rule(d, "excluded_industry")["params"].update(divisions=[25, 26]),
     r"negative_list\[8\]\.params\.divisions: expected a list of quoted codes, found \[25, 26\]"),
    (lambda d: _rule(d, "excluded_industry")["params"].update(financing_platforms="yes"),
     r"negative_list\[8\]\.params\.financing_platforms: expected true or false"),
    (lambda d: d["grades"].append({"grade": "D", "min": 100}), "grades: list grades best first"),
    (lambda d: d.pop("version"), "version: missing"),
    # a key no rule reads is a misspelling, not a setting (`wieght` left the expert weight in force)
    (lambda d: ind(d, "awards_3y").update(wieght=0.3), r"indicators\[14\]\.wieght: not a known key"),
    (lambda d: d.update(colour="red"), "colour: not a known key"),
    (lambda d: d["indicators"].append(ind(d, "awards_3y")), r"indicators\[19\]\.key: listed twice \(also indicators\[14\]\)"),
    (lambda d: d["negative_list"][1].update(id="N01"), r"negative_list\[1\]\.id: rule ids must be unique"),
    (lambda d: d["grades"][-1].update(min=100), r"grades\[6\]\.min: the lowest grade must start at 0"),
    (lambda d: [i.update(weight=0) for i in d["indicators"] if i["dimension"] == "brand"],
     r"dimensions\.brand: its indicators' weights sum to 0"),
    (lambda d: d["calibration"].update(indicator_weight_bounds=[1.5, 3]), r"calibration\.indicator_weight_bounds: need"),
    # accepted before, then failing or misleading at night: each is refused at load
    (lambda d: _rule(d, "arrears").update(params={"months": -1}), r"negative_list\[7\]\.params\.months: must lie in \[0, 100\]"),
    (lambda d: _rule(d, "major_penalty").update(params={"years": 10**20}), r"params\.years: must lie in \[0, 100\]"),
    (lambda d: ind(d, "revenue_growth").update(transform={"type": "categories", "points": {"A": 100}}),
     r"indicators\[6\]\.transform\.type: revenue_growth is a number: its transform must be bands or linear"),
    (lambda d: ind(d, "tax_credit_grade").update(transform={"type": "bands", "edges": [1], "points": [0, 100]}),
     r"indicators\[8\]\.transform\.type: tax_credit_grade is a code: its transform must be categories"),
    (lambda d: ind(d, "awards_3y").update(source=["bogus"]), r"indicators\[14\]\.source\[0\]: expected 'registry'"),
    (lambda d: ind(d, "awards_3y").update(zh=" "), r"indicators\[14\]\.zh: empty"),
    (lambda d: d["grades"][1].update(grade="AAA"), r"grades\[1\]\.grade: 'AAA' is listed twice"),
    (lambda d: d["grades"][0].update(min=2000), r"grades\[0\]\.min: must be at least 0 and at most 1,000"),
    (lambda d: d["calibration"].update(out_of_time_share=1), r"calibration\.out_of_time_share: must be above 0 and at most 0.9"),
    (lambda d: d.update({True: "x"}), r"catalogue.yaml: \(top level\): the key True is not text: put it in quotes"),
]


@pytest.mark.parametrize("mutate,message", CASES)
def test_a_bad_catalogue_is_refused_by_file_and_key(tmp_path, mutate, message):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(broken(mutate), allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError, match=message) as err:
        load_catalogue(path)
    assert str(err.value).startswith(str(path))


LINE_CASES = [  # (mutate, the field named, text on the line the message must give)
    (lambda d: ind(d, "awards_3y").update(weight="heavy"), r"indicators\[14\]\.weight", "weight: heavy"),
    (lambda d: d["negative_list"][7].update(params={"months": "three"}), r"negative_list\[7\]\.params\.months",
     "months: three"),
    # a rule over the whole list names the item that breaks it, on that item's line
    (lambda d: _rule(d, "dishonest_debtor").update(enabled=False), r"negative_list\[0\]", "id: N01"),
]


@pytest.mark.parametrize("mutate,field,on_line", LINE_CASES)
def test_a_problem_names_the_line_it_is_on(tmp_path, mutate, field, on_line):
    path = tmp_path / "catalogue.yaml"
    text = yaml.safe_dump(broken(mutate), allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    line = next(n for n, written in enumerate(text.splitlines(), 1) if on_line in written)
    with pytest.raises(CatalogueError, match=rf"^{re.escape(str(path))}: {field}: .* \(line {line}\)$"):
        load_catalogue(path)


def test_a_catalogue_made_in_code_is_checked_as_the_file_is():
    """The fitted catalogue, before `--adopt` writes it: the same rules and words, no line to name."""
    doc = broken(lambda d: ind(d, "awards_3y").update(weight="heavy"))
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(doc, "<fitted catalogue>")
    assert str(err.value) == "<fitted catalogue>: indicators[14].weight: expected a number, found 'heavy'"
    fitted = broken(lambda d: d.update(derived_from={"version": 1, "content_hash": "ab" * 32},
                                       calibration_note={"fitted_on": "2026-11-28", "train": {"loans": 900}}))
    assert parse_catalogue(fitted).raw["derived_from"]["version"] == 1  # the keys `--adopt` writes


def test_unparseable_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("indicators: [\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(bad)
    with pytest.raises(CatalogueError, match="no such catalogue file"):
        load_catalogue(tmp_path / "absent.yaml")


def test_hash_follows_content_not_layout(tmp_path):
    base = load_catalogue()
    same = tmp_path / "same.yaml"
    same.write_text("# a comment\n" + yaml.safe_dump(DOC, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert load_catalogue(same).content_hash == base.content_hash
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(broken(lambda d: ind(d, "awards_3y").update(weight=0.3)), allow_unicode=True),
                     encoding="utf-8")
    assert load_catalogue(other).content_hash != base.content_hash


def test_weights_per_point_sum_to_the_total_scale():
    weights = load_catalogue().total_weights()
    assert len(weights) == 19 and sum(weights.values()) == pytest.approx(10.0)  # 100 points each -> 1000


def _rule(doc, kind):
    return next(r for r in doc["negative_list"] if r["rule"] == kind)


MANDATORY_CASES = [
    (lambda d: d["negative_list"].remove(_rule(d, "dishonest_debtor")), "dishonest_debtor", "no rule of that kind"),
    (lambda d: _rule(d, "dishonest_debtor").update(enabled=False), "dishonest_debtor", "N01 are disabled or weakened"),
    (lambda d: d.update(negative_list=[]), "dishonest_debtor", "no rule of that kind"),
    (lambda d: _rule(d, "arrears").update(params={"months": 12}), "arrears", "N08 are disabled or weakened"),
    (lambda d: _rule(d, "excluded_industry")["params"].update(industries=["C"]), "excluded_industry", "N09"),
    (lambda d: _rule(d, "major_penalty").update(params={"years": 1}), "major_penalty", "N10"),
    (lambda d: _rule(d, "not_sme").update(params={"size_classes": []}), "not_sme", "N11"),
    (lambda d: _rule(d, "outside_region").update(params={"district_prefix": "5"}), "outside_region", "N12"),
    # 税务非正常户 is one of them: it cannot be dropped or switched off either
    (lambda d: d["negative_list"].remove(_rule(d, "tax_abnormal")), "tax_abnormal", "no rule of that kind"),
    (lambda d: _rule(d, "tax_abnormal").update(enabled=False), "tax_abnormal", "N13 are disabled or weakened"),
    # N09 covers financing platforms and the 两高一剩 divisions, not only real estate
    (lambda d: _rule(d, "excluded_industry")["params"].update(financing_platforms=False), "excluded_industry", "N09"),
    (lambda d: _rule(d, "excluded_industry")["params"].update(divisions=["25", "26", "30", "31", "32"]),
     "excluded_industry", "N09"),
]


@pytest.mark.parametrize("mutate,kind,how", MANDATORY_CASES)
def test_the_mandatory_exclusions_cannot_be_dropped_disabled_or_weakened(tmp_path, mutate, kind, how):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(broken(mutate), allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError, match=rf"negative_list(\[\d+\])?: the mandatory exclusion {kind} .*{how}") as err:
        load_catalogue(path)
    assert str(path) in str(err.value)


def test_operators_may_add_exclusions_and_stricter_parameters(tmp_path):
    def stricter(d):
        _rule(d, "arrears").update(params={"months": 2})
        _rule(d, "excluded_industry")["params"].update(industries=["K", "B"], divisions=["25", "26", "30", "31", "32", "44", "22"])
        d["negative_list"].append({"id": "N90", "rule": "excluded_industry",
                                   "params": {"industries": ["J"], "divisions": [], "financing_platforms": False},
                                   "zh": "本地限制行业", "en": "A locally excluded sector", "enabled": False})
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(broken(stricter), allow_unicode=True), encoding="utf-8")
    cat = load_catalogue(path)
    assert {r.id: r.enabled for r in cat.negative_rules}["N90"] is False
    assert next(r for r in cat.negative_rules if r.id == "N08").params == {"months": 2}


def test_a_key_yaml_does_not_read_as_text_is_named_on_its_own_line(tmp_path):
    """`on:` or `no:` as a key is a boolean to YAML: the message says to quote it, on the key's line."""
    path = tmp_path / "catalogue.yaml"
    text = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
    at = text.index("  - id: I01")
    path.write_text(text[:at] + "  - on: 1\n    id: I01" + text[at + len("  - id: I01"):], encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    line = text[:at].count("\n") + 1
    assert f"catalogue.yaml: indicators[0]: the key True is not text: put it in quotes (line {line})" in str(err.value)


def test_each_key_yaml_does_not_read_as_text_is_named_on_its_own_line_inside_a_transform(tmp_path):
    path = tmp_path / "catalogue.yaml"
    text = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
    at = text.index("    transform: {type: bands")
    path.write_text(text[:at] + "    yes: 1\n    3: 2\n" + text[at:], encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    line = text[:at].count("\n") + 1
    assert f"the key True is not text: put it in quotes (line {line})" in str(err.value)
    assert f"the key 3 is not text: put it in quotes (line {line + 1})" in str(err.value)
