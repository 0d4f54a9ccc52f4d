"""Near-identical documents for tests of search (issue #13), shared by the local library's
tests (tests/retrieval) and a team collection's (tests/team), which must rank them alike:
trial protocols whose "sample size" sections differ only in wording, and accident
reports whose title block repeats the place and aircraft a question names them by."""

from __future__ import annotations

PROTOCOL = ("Study protocol\n\nThis randomised trial compares two dressings for wounds after surgery in "
            "adults at one hospital.\n\n")
SUB_STUDY = "Study protocol, a sub-study of ISRCTN12345\n\n"
WEAK = "Participants\n\nForty participants will be enrolled, as the available clinic time allows.\n"
STRONG = ("Sample size calculation\n\nThe sample size was calculated with a power of 80% and an alpha of 0.05: "
          "the sample size calculation gives 64 participants per group.\n")


def report(registration: str, aircraft: str, place: str, hours: int) -> str:
    title = (f"Aviation accident final report for {registration}, a {aircraft}, at {place}. "
             f"The {aircraft} {registration} was destroyed near {place}; the {aircraft} was registered to a "
             f"club at {place}, and the investigation of {registration} was carried out at {place}. "
             + " ".join(f"Record {n} of the {aircraft} {registration} at {place} is kept on file." for n in range(3))
             + " This report was prepared from the statements of the witnesses and from the examination of the "
               "wreckage by the investigators in charge.")
    pilot = (f"Pilot information. The pilot held a private certificate with an airplane single-engine land "
             f"rating and had logged {hours} hours of total flight time, of which 40 hours were in the last "
             "ninety days. The pilot's last flight review was completed eleven months before the accident, "
             "and the pilot held a third-class medical certificate with no limitations. The pilot reported "
             "no prior accidents or incidents, and the flight instructor who signed the review described "
             "the pilot as careful and well prepared for cross-country flights in good weather.")
    weather = ("Weather information. The nearest station reported wind from 270 degrees at 8 knots, visibility "
               "10 miles, a few clouds at 4,500 feet, temperature 12 degrees, dew point 3 degrees, and an "
               "altimeter setting of 30.05 inches of mercury. No significant weather was forecast for the "
               "area, and no notices to airmen affected the airport, its runways or its lighting that day.")
    return "\n\n".join((title, pilot, weather)) + "\n"
