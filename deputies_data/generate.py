"""Generate deputies.csv: a synthetic registry of deputies for the legislatures in legislatures.csv.

Regions and legislature names are real; every deputy is invented. The output is deterministic
(seeded), and every e-mail address uses a reserved domain (<region>.example.org).

Run from the repository root:
    python deputies_data/generate.py                               # deputies_data/deputies.csv
    python deputies_data/generate.py --total 100000 --out /tmp/big.csv
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261127
DEFAULT_TOTAL = 6000
MIN_SEATS, MAX_SEATS = 15, 110
FALLBACK_SEATS = 35  # a legislature whose region is missing from REAL_SEATS
MALE_SHARE = 0.7
ADDRESS_SHARE = 0.6

COLUMNS = (
    "external_id", "region_code", "legislature_code", "surname", "first_name", "patronymic",
    "gender", "position", "party", "constituency", "email", "reception_address",
)  # fmt: skip

# Approximate number of seats of each regional legislature (recent convocations). The real total
# is about 3,800; the default run scales these up to about DEFAULT_TOTAL within the seat bounds.
REAL_SEATS: dict[str, int] = {
    "RU-AD": 50, "RU-AL": 41, "RU-BA": 110, "RU-BU": 66, "RU-CE": 41, "RU-CU": 44,
    "RU-DA": 90, "RU-IN": 32, "RU-KB": 70, "RU-KL": 27, "RU-KC": 50, "RU-KR": 36,
    "RU-KK": 50, "RU-KO": 30, "RU-ME": 52, "RU-MO": 48, "RU-SE": 70, "RU-SA": 70,
    "RU-TA": 100, "RU-TY": 32, "RU-UD": 60,
    "RU-ALT": 68, "RU-KAM": 28, "RU-KHA": 36, "RU-KDA": 70, "RU-KYA": 52, "RU-PER": 60,
    "RU-PRI": 40, "RU-STA": 50, "RU-ZAB": 50,
    "RU-AMU": 27, "RU-ARK": 47, "RU-AST": 44, "RU-BEL": 50, "RU-BRY": 60, "RU-CHE": 60,
    "RU-IRK": 45, "RU-IVA": 26, "RU-KGD": 40, "RU-KLU": 40, "RU-KEM": 46, "RU-KIR": 40,
    "RU-KOS": 35, "RU-KGN": 34, "RU-KRS": 45, "RU-LEN": 50, "RU-LIP": 42, "RU-MAG": 21,
    "RU-MOS": 50, "RU-MUR": 32, "RU-NIZ": 50, "RU-NGR": 32, "RU-NVS": 76, "RU-OMS": 44,
    "RU-ORE": 47, "RU-ORL": 50, "RU-PNZ": 36, "RU-PSK": 26, "RU-ROS": 60, "RU-RYA": 40,
    "RU-SAK": 28, "RU-SAM": 50, "RU-SAR": 40, "RU-SMO": 48, "RU-SVE": 50, "RU-TAM": 50,
    "RU-TOM": 42, "RU-TUL": 36, "RU-TVE": 40, "RU-TYU": 48, "RU-ULY": 36, "RU-VLA": 38,
    "RU-VGG": 38, "RU-VLG": 34, "RU-VOR": 56, "RU-YAR": 50,
    "RU-MOW": 45, "RU-SPE": 50, "RU-YEV": 19, "RU-CHU": 15, "RU-KHM": 38, "RU-NEN": 19,
    "RU-YAN": 22,
}  # fmt: skip

CAPITALS: dict[str, str] = {
    "RU-AD": "Майкоп", "RU-AL": "Горно-Алтайск", "RU-BA": "Уфа", "RU-BU": "Улан-Удэ",
    "RU-CE": "Грозный", "RU-CU": "Чебоксары", "RU-DA": "Махачкала", "RU-IN": "Магас",
    "RU-KB": "Нальчик", "RU-KL": "Элиста", "RU-KC": "Черкесск", "RU-KR": "Петрозаводск",
    "RU-KK": "Абакан", "RU-KO": "Сыктывкар", "RU-ME": "Йошкар-Ола", "RU-MO": "Саранск",
    "RU-SE": "Владикавказ", "RU-SA": "Якутск", "RU-TA": "Казань", "RU-TY": "Кызыл",
    "RU-UD": "Ижевск", "RU-ALT": "Барнаул", "RU-KAM": "Петропавловск-Камчатский",
    "RU-KHA": "Хабаровск", "RU-KDA": "Краснодар", "RU-KYA": "Красноярск", "RU-PER": "Пермь",
    "RU-PRI": "Владивосток", "RU-STA": "Ставрополь", "RU-ZAB": "Чита",
    "RU-AMU": "Благовещенск", "RU-ARK": "Архангельск", "RU-AST": "Астрахань",
    "RU-BEL": "Белгород", "RU-BRY": "Брянск", "RU-CHE": "Челябинск", "RU-IRK": "Иркутск",
    "RU-IVA": "Иваново", "RU-KGD": "Калининград", "RU-KLU": "Калуга", "RU-KEM": "Кемерово",
    "RU-KIR": "Киров", "RU-KOS": "Кострома", "RU-KGN": "Курган", "RU-KRS": "Курск",
    "RU-LEN": "Гатчина", "RU-LIP": "Липецк", "RU-MAG": "Магадан", "RU-MOS": "Красногорск",
    "RU-MUR": "Мурманск", "RU-NIZ": "Нижний Новгород", "RU-NGR": "Великий Новгород",
    "RU-NVS": "Новосибирск", "RU-OMS": "Омск", "RU-ORE": "Оренбург", "RU-ORL": "Орёл",
    "RU-PNZ": "Пенза", "RU-PSK": "Псков", "RU-ROS": "Ростов-на-Дону", "RU-RYA": "Рязань",
    "RU-SAK": "Южно-Сахалинск", "RU-SAM": "Самара", "RU-SAR": "Саратов",
    "RU-SMO": "Смоленск", "RU-SVE": "Екатеринбург", "RU-TAM": "Тамбов", "RU-TOM": "Томск",
    "RU-TUL": "Тула", "RU-TVE": "Тверь", "RU-TYU": "Тюмень", "RU-ULY": "Ульяновск",
    "RU-VLA": "Владимир", "RU-VGG": "Волгоград", "RU-VLG": "Вологда", "RU-VOR": "Воронеж",
    "RU-YAR": "Ярославль", "RU-MOW": "Москва", "RU-SPE": "Санкт-Петербург",
    "RU-YEV": "Биробиджан", "RU-CHU": "Анадырь", "RU-KHM": "Ханты-Мансийск",
    "RU-NEN": "Нарьян-Мар", "RU-YAN": "Салехард",
}  # fmt: skip

# Masculine forms; feminine_surname() derives the feminine ones.
SURNAMES = """
Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков
Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин
Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов
Александров Дмитриев Королёв Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв
Белов Антонов Тарасов Жуков Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов
Сидоров Матвеев Титов Марков Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов
Казаков Афанасьев Данилов Савельев Тимофеев Фомин Чернов Абрамов Мартынов Ефимов Федотов
Щербаков Назаров Калинин Исаев Чернышёв Быков Маслов Родионов Коновалов Лазарев Воронин Климов
Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов
Соболев Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов
Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов
Ерёмин Тихомиров Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов Прокофьев
Харитонов Князев Цветков Левин Митрофанов Воронцов Фадеев Шестаков Рябов Жданов Кравцов
Успенский Покровский Преображенский Рождественский Никольский Островский Жуковский Троицкий
Введенский Богословский Садовой Береговой Полевой Шевченко Бондаренко Ткаченко Кравченко
Коваленко Черных Седых Белых Долгих Ковальчук Мельничук Хабибуллин Галиев Сафин Гарипов
Шарипов Зарипов Валиев Хасанов Юсупов Ахметов Мухаметшин Гилязов Нуриев Фаттахов Каримов
Алиев Магомедов Гаджиев Абдуллаев Исмаилов Цыренов Дашиев Бадмаев Намсараев Слепцов Сивцев
Винокуров Хетагуров Кочиев Тхагапсоев Шогенов Кушхов Бекмурзаев Эльдаров
""".split()

# First name -> patronymic stem ("Иван" -> "Иванов" + "ич" / "на"); irregular ones in IRREGULAR.
MALE_NAMES: dict[str, str] = {
    "Александр": "Александров", "Алексей": "Алексеев", "Анатолий": "Анатольев",
    "Андрей": "Андреев", "Антон": "Антонов", "Аркадий": "Аркадьев", "Арсений": "Арсеньев",
    "Артём": "Артёмов", "Борис": "Борисов", "Вадим": "Вадимов", "Валентин": "Валентинов",
    "Валерий": "Валерьев", "Василий": "Васильев", "Виктор": "Викторов", "Виталий": "Витальев",
    "Владимир": "Владимиров", "Владислав": "Владиславов", "Вячеслав": "Вячеславов",
    "Геннадий": "Геннадьев", "Георгий": "Георгиев", "Глеб": "Глебов", "Григорий": "Григорьев",
    "Денис": "Денисов", "Дмитрий": "Дмитриев", "Евгений": "Евгеньев", "Егор": "Егоров",
    "Иван": "Иванов", "Игорь": "Игорев", "Илья": "", "Кирилл": "Кириллов",
    "Константин": "Константинов", "Лев": "Львов", "Леонид": "Леонидов", "Максим": "Максимов",
    "Матвей": "Матвеев", "Михаил": "Михайлов", "Никита": "", "Николай": "Николаев",
    "Олег": "Олегов", "Павел": "Павлов", "Пётр": "Петров", "Роман": "Романов",
    "Руслан": "Русланов", "Семён": "Семёнов", "Сергей": "Сергеев", "Станислав": "Станиславов",
    "Степан": "Степанов", "Тимур": "Тимуров", "Фёдор": "Фёдоров", "Эдуард": "Эдуардов",
    "Юрий": "Юрьев", "Яков": "Яковлев", "Ярослав": "Ярославов", "Ринат": "Ринатов",
    "Марат": "Маратов", "Айдар": "Айдаров", "Рустам": "Рустамов", "Аслан": "Асланов",
}  # fmt: skip
IRREGULAR: dict[str, tuple[str, str]] = {
    "Илья": ("Ильич", "Ильинична"),
    "Никита": ("Никитич", "Никитична"),
}

FEMALE_NAMES = """
Анна Алла Алёна Александра Анастасия Валентина Вера Виктория Галина Дарья Евгения Екатерина
Елена Елизавета Жанна Зоя Инна Ирина Карина Кристина Ксения Лариса Лилия Любовь Людмила
Маргарита Марина Мария Надежда Наталья Нина Оксана Ольга Полина Светлана Софья Тамара Татьяна
Юлия Яна Гульнара Эльвира Альбина Диана
""".split()

PARTIES_LIST: dict[str, int] = {  # party -> weight, party-list seats
    "Единая Россия": 50, "КПРФ": 18, "ЛДПР": 14, "Справедливая Россия — За правду": 10,
    "Новые люди": 8,
}  # fmt: skip
PARTIES_SINGLE: dict[str, int] = {  # single-mandate seats also elect self-nominees
    "Единая Россия": 60, "КПРФ": 9, "ЛДПР": 7, "Справедливая Россия — За правду": 6,
    "Новые люди": 4, "Самовыдвиженец": 14,
}  # fmt: skip

COMMITTEES = (
    "бюджету, финансам и налогам",
    "социальной политике",
    "образованию, науке и культуре",
    "здравоохранению",
    "законодательству и местному самоуправлению",
    "экономической политике и инвестициям",
    "аграрной политике и природопользованию",
    "строительству, транспорту и жилищно-коммунальному хозяйству",
    "экологии",
    "молодёжной политике, физической культуре и спорту",
    "регламенту и депутатской этике",
    "промышленности и предпринимательству",
    "безопасности и правопорядку",
    "вопросам семьи, материнства и детства",
    "информационной политике и связи",
)

STREETS = (
    "ул. Ленина", "ул. Советская", "ул. Мира", "ул. Гагарина", "ул. Пушкина", "ул. Московская",
    "ул. Центральная", "ул. Молодёжная", "ул. Садовая", "ул. Школьная", "ул. Набережная",
    "ул. Октябрьская", "ул. Первомайская", "ул. Комсомольская", "ул. Кирова", "ул. Победы",
    "пр. Мира", "пр. Победы", "пр. Ленина", "пер. Почтовый", "пл. Революции",
)  # fmt: skip

# Simplified BGN/PCGN romanisation: ё -> e, й -> y, the hard and soft signs are dropped.
TRANSLIT: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


@dataclass(frozen=True)
class Legislature:
    region_code: str
    code: str


@dataclass(frozen=True)
class Person:
    surname: str
    first_name: str
    patronymic: str
    gender: str


def read_legislatures(path: Path) -> list[Legislature]:
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    found = [Legislature(row["region_code"], row["legislature_code"]) for row in rows]
    return sorted(found, key=lambda leg: leg.code)


def scale_seats(base: dict[str, int], total: int, low: int, high: int | None) -> dict[str, int]:
    """Multiply every seat count by one factor, clamped to [low, high], to sum to about total."""

    def scaled(factor: float) -> dict[str, int]:
        counts = {code: max(low, round(seats * factor)) for code, seats in base.items()}
        return {code: n if high is None else min(n, high) for code, n in counts.items()}

    lo, hi = 0.0, total / min(base.values()) + 1.0
    for _ in range(60):
        middle = (lo + hi) / 2
        if sum(scaled(middle).values()) < total:
            lo = middle
        else:
            hi = middle
    return scaled(hi)


def seat_counts(legislatures: list[Legislature], total: int | None) -> dict[str, int]:
    base = {leg.code: REAL_SEATS.get(leg.region_code, FALLBACK_SEATS) for leg in legislatures}
    if total is None:
        return scale_seats(base, DEFAULT_TOTAL, MIN_SEATS, MAX_SEATS)
    return scale_seats(base, total, 1, None)


def feminine_surname(surname: str) -> str:
    if surname.endswith(("ский", "цкий", "ой")):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    return surname  # -ко, -ых, -их, -ук, -юк: the same for women


def patronymic(father: str, gender: str) -> str:
    if father in IRREGULAR:
        male, female = IRREGULAR[father]
        return male if gender == "m" else female
    return MALE_NAMES[father] + ("ич" if gender == "m" else "на")


def make_person(rng: random.Random) -> Person:
    gender = "m" if rng.random() < MALE_SHARE else "f"
    surname = rng.choice(SURNAMES)
    first = rng.choice(list(MALE_NAMES) if gender == "m" else FEMALE_NAMES)
    if gender == "f":
        surname = feminine_surname(surname)
    return Person(surname, first, patronymic(rng.choice(list(MALE_NAMES)), gender), gender)


def translit(text: str) -> str:
    return "".join(TRANSLIT.get(char, char) for char in text.lower())


def email_for(person: Person, region_code: str, taken: set[str]) -> str:
    initials = translit(person.first_name)[0] + translit(person.patronymic)[:1]
    local = f"{translit(person.surname)}.{initials}"
    domain = f"{region_code.lower()}.example.org"
    email, suffix = f"{local}@{domain}", 1
    while email in taken:
        suffix += 1
        email = f"{local}{suffix}@{domain}"
    taken.add(email)
    return email


def positions(seats: int, rng: random.Random) -> list[str]:
    """One chair, 1-3 deputy chairs, a few committee chairs, the rest ordinary deputies."""
    deputies = min(3, 1 + seats // 40, seats - 1)
    committees = max(0, min(len(COMMITTEES), max(3, seats // 10), seats - 1 - deputies))
    topics = rng.sample(COMMITTEES, committees)
    rest = [f"Председатель комитета по {topic}" for topic in topics]
    rest += ["Депутат"] * (seats - 1 - deputies - committees)
    rng.shuffle(rest)
    return ["Председатель", *["Заместитель председателя"] * deputies, *rest]


def constituencies(seats: int, rng: random.Random) -> list[str]:
    """About half single-mandate districts (numbered 1..k in random order), half party list."""
    single = seats // 2
    districts = list(range(1, single + 1))
    rng.shuffle(districts)
    labels = [f"Одномандатный избирательный округ № {k}" for k in districts]
    labels += ["Единый избирательный округ"] * (seats - single)
    rng.shuffle(labels)
    return labels


def weighted(choices: dict[str, int], rng: random.Random) -> str:
    return rng.choices(list(choices), weights=list(choices.values()))[0]


def address(region_code: str, rng: random.Random) -> str:
    if rng.random() >= ADDRESS_SHARE:
        return ""
    street = f"{rng.choice(STREETS)}, д. {rng.randint(1, 120)}"
    office = rng.choice((f"каб. {rng.randint(101, 520)}", f"офис {rng.randint(1, 40)}"))
    city = CAPITALS.get(region_code)
    return f"г. {city}, {street}, {office}" if city else f"{street}, {office}"


def legislature_rows(
    leg: Legislature, seats: int, rng: random.Random, taken: set[str]
) -> Iterable[list[str]]:
    pairs = zip(positions(seats, rng), constituencies(seats, rng), strict=True)
    for seat, (position, constituency) in enumerate(pairs, start=1):
        person = make_person(rng)
        single = constituency != "Единый избирательный округ"
        party = weighted(PARTIES_SINGLE if single else PARTIES_LIST, rng)
        yield [
            f"{leg.code}-{seat:04d}", leg.region_code, leg.code, person.surname,
            person.first_name, person.patronymic, person.gender, position, party, constituency,
            email_for(person, leg.region_code, taken), address(leg.region_code, rng),
        ]  # fmt: skip


def generate(legislatures: list[Legislature], total: int | None) -> list[list[str]]:
    rng = random.Random(SEED)
    counts = seat_counts(legislatures, total)
    taken: set[str] = set()
    rows = [
        row for leg in legislatures for row in legislature_rows(leg, counts[leg.code], rng, taken)
    ]
    return sorted(rows, key=lambda row: row[0])


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "deputies.csv", help="output CSV")
    parser.add_argument(
        "--total", type=positive, default=None,
        help=f"about this many deputies (default: about {DEFAULT_TOTAL}, "
        f"{MIN_SEATS}-{MAX_SEATS} per legislature; with --total there is no upper bound)",
    )  # fmt: skip
    parser.add_argument(
        "--legislatures", type=Path, default=HERE / "legislatures.csv", help="input CSV"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rows = generate(read_legislatures(args.legislatures), args.total)
    write_csv(args.out, rows)
    print(f"wrote {len(rows)} deputies to {args.out}")


if __name__ == "__main__":
    main()
