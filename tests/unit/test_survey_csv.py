"""The survey CSV upload: header aliases, and errors that name the station and field."""

import pytest

from services.api.errors import FieldInvalid
from services.api.processing.derivation import parse_survey_csv
from shared.domain.survey import Station


def test_header_aliases_and_extra_columns() -> None:
    text = "Station,MD,Inc,Azi\nS0,0,0,0\n\nS1,150.5,3.5,271\n"
    assert parse_survey_csv(text) == [Station(0, 0, 0), Station(150.5, 3.5, 271)]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("md_m,inclination_deg\n0,0\n", "body"),
        ("md_m,inclination_deg,azimuth_deg\n0,0,0\n10,1\n", "stations.1.azimuth_deg"),
        ("md_m,inclination_deg,azimuth_deg\n0,nan,0\n", "stations.0.inclination_deg"),
        ("md_m,inclination_deg,azimuth_deg\n", "stations"),
        ("md_m,inclination_deg,azimuth_deg\n" + "x" * 200_000 + "\n", "body"),
    ],
)
def test_bad_csv_names_the_field(text: str, field: str) -> None:
    with pytest.raises(FieldInvalid) as info:
        parse_survey_csv(text)
    assert info.value.field == field
