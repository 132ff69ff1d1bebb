"""The README's Python example runs as written and shows what its comments say."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_python_example_runs_and_its_comments_hold():
    (block,) = python_blocks()
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    A, jax, jnp = namespace["A"], namespace["jax"], namespace["jnp"]

    # "7.2e-35; jax.grad(jnp.tanh)(40.0) is 0": 1 - tanh(40)^2 = 4 e^-80 / (1 +
    # e^-80)^2, far below float64's rounding of tanh itself.
    assert np.isclose(float(jax.grad(A.tanh)(40.0)), 4 * np.exp(-80.0), rtol=1e-6)
    assert float(jax.grad(jnp.tanh)(40.0)) == 0.0

    # The masked 1e30 gets 0 and the +inf entry takes all the mass.
    probs = np.asarray(A.softmax(namespace["logits"], where=namespace["mask"]))
    e = np.exp([2.0, 1.0])
    np.testing.assert_allclose(probs[0], [*(e / e.sum()), 0.0], rtol=1e-6)
    np.testing.assert_array_equal(probs[1], [1.0, 0.0, 0.0])
