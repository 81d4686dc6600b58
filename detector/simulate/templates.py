"""Prompt templates of the simulated traffic: what campaigns and legitimate products send.

Slots in braces are filled by `corpus.fill` (q question, r answer, c criteria, k country, l
language, x sensitive subject, u URL, w word, t topic, n count, d diff, o tool output).
"""

from __future__ import annotations

ELICIT = {
    "verbs": (
        "write out",
        "show",
        "spell out",
        "lay out",
        "walk through",
        "give",
        "reveal",
        "print",
    ),
    "scope": (
        "your complete",
        "the full",
        "all of your",
        "your entire",
        "every step of your",
        "your",
    ),
    "object": (
        "internal reasoning",
        "chain of thought",
        "thought process",
        "reasoning steps",
        "hidden deliberation",
        "step-by-step derivation",
        "thinking",
    ),
    "where": (
        "step by step before the final answer",
        "inside <think></think> tags",
        "as a JSON object with fields thought and answer",
        "in a numbered list, then answer",
        "verbatim, without summarising",
        "in full detail, nothing skipped",
    ),
    "foreign": (
        "请逐步写出你的完整推理过程，然后给出答案。",
        "请把你的思考过程放在<think>标签内。",
        "Распиши все шаги своего рассуждения подробно.",
        "Escribe todo tu razonamiento paso a paso.",
        "思考過程をすべて書き出してから答えてください。",
    ),
}


RUBRIC = (
    "You are an expert evaluator. Score the response below from 1 to 10 against this rubric: "
    '{c}. Return JSON {{"score": int, "rationale": str}}.\nQuestion: {q}\nResponse: {r}',
    "Grade the following answer. Criteria: {c}. Give a numeric score (0-5) per criterion and an overall "
    "verdict.\nTask: {q}\nAnswer: {r}",
    "Which response is better, A or B? Judge on {c}. Reply with 'A' or 'B' and a short justification.\n"
    "Prompt: {q}\nResponse A: {r}\nResponse B: {r2}",
    "Act as a reward model. Assign a reward between -1 and 1 to this completion for {c}.\nPrompt: {q}\n"
    "Completion: {r}",
    "请根据以下评分标准为回答打分（1-10分）：{c}。\n问题：{q}\n回答：{r}",
)
CRITERIA = (
    "correctness, completeness and clarity",
    "helpfulness and harmlessness",
    "factual accuracy",
    "reasoning quality and final answer",
    "instruction following and style",
)

REWRITE = (
    "Rewrite the following answer so that it avoids politically sensitive content and would pass content "
    "review in {k}:\n{r}",
    "Produce a censorship-safe version of this response, removing references to {x}:\n{r}",
    "Rephrase this so it is acceptable to regulators in {k}; keep the facts that are not sensitive:\n{r}",
    "把下面的回答改写成符合审查要求的版本，删去敏感内容：\n{r}",
)
SENSITIVE = (
    "political leaders",
    "protests",
    "territorial disputes",
    "historical events",
    "dissidents",
)

AGENTIC = (
    "You are an autonomous coding agent with bash, editor and test-runner tools. Task: {p}",
    "Use the browser tool to open {u}, log in, and export the table on the billing page as CSV.",
    "Take a screenshot, find the '{w}' button and click it, then report what changed.",
    "Using the python tool, load sales.csv, compute monthly revenue by {w}, and plot it.",
    "Plan the steps, call the search tool as needed, and write a summary of {t} with sources.",
    "Run the test suite, read the failures, and patch the code until all tests pass. Repository: {u}",
)

RECONSTRUCT = (
    "Here is a problem and its final answer. Reconstruct the detailed reasoning that leads to the answer, "
    "step by step, as if you had solved it yourself.\nProblem: {q}\nFinal answer: {a}",
    "Given the answer below, write the full chain of thought that would produce it.\nQ: {q}\nA: {a}",
    "Explain, in the first person and step by step, how you arrived at '{a}' for: {q}",
)

SELF_INSTRUCT = (
    "Generate {n} diverse, challenging instructions for training an AI assistant about {t}. Return a JSON "
    "list of objects with fields instruction, input and output.",
    "Come up with {n} new tasks similar to these examples but on {t}. Vary difficulty and format.",
    "Write {n} question-answer pairs about {t} suitable for fine-tuning a language model.",
)

BENCHMARK = (
    "Question: {q}\nA) {o1}\nB) {o2}\nC) {o3}\nD) {o4}\nAnswer: Let's think step by step.",
    "Q: {q}\nA: Let's think step by step.",
    "Solve the following problem. Put your final answer in \\boxed{{}}.\n{q}",
)

JUDGE_PRODUCT = (
    "Rate the helpfulness of this customer-support reply from 1 to 5 and list any policy issues.\n"
    "Customer: {c}\nAgent reply: {r}",
    "Does this support reply resolve the customer's issue? Answer yes/no and give a score 1-5.\n"
    "Ticket: {c}\nReply: {r}",
)

CATALOGUE = (
    "Write a 60-word product description for {p} ({a}). Tone: friendly. Include the SKU {s}.",
    "Product title: {p}\nFeatures: {a}\nWrite an SEO meta description under 155 characters.",
)

SUPPORT_SYSTEM = (
    "You are the assistant inside {c}'s mobile app. Answer questions about orders and accounts."
)
RAG_SYSTEM = (
    "Answer using only the context documents. Cite document ids. If unsure, say you don't know."
)
AGENT_SYSTEM = "You are a coding agent. Use tools to inspect files, run commands and edit code."


TRANSLATE = (
    "Translate the following into {l}, keeping the formatting and placeholders unchanged:\n{r}",
    "Localise this UI text for {l} speakers in {k}. Return only the translation.\n{r}",
    "Translate to {l}. Keep product names in English; formal register.\n{r}",
)
LANGUAGES = ("German", "French", "Japanese", "Spanish", "Portuguese", "Korean", "Italian", "Polish")

CI_REVIEW = (
    "Review this diff for bugs and style problems. Reply as `file:line: comment`, nothing else.\n{d}",
    "CI job {w} failed. Summarise the cause from this log and propose a one-line fix.\n{o}",
    "Write a one-paragraph release note for this change.\n{d}",
)
