"""An LLM as a judge: single answers graded against a reference, pairs of runs compared in both orders,
and a calibration report of how far the judge agrees with labels that are known to be right.

Any chat backend judges: the configured one (the local engine or the service's remote LLM) or a
separate OpenAI-compatible endpoint with its own model, key and concurrency (``JudgeSpec``).

Inside another suite: ``judge = JudgeSpec(url, model, key).build(make_service)``, then per item
``grade_fields(judge.grade(question, response, gold, rubric), rubric)`` (``run_judging``) gives the
fields to store: the grade, whether it passes, and the judge's raw replies.
"""
