"""HandlerChain: ordered, each handler once, safe to change while walked."""

from __future__ import annotations

from neurtmp._chains import HandlerChain


def test_order_and_uniqueness() -> None:
    chain: HandlerChain[str] = HandlerChain()
    for name in ("a", "b", "a", "c"):
        chain.add(name)
    assert list(chain) == ["a", "b", "c"] and len(chain) == 3
    chain.remove("b")
    chain.remove("zz")
    assert chain.handlers == ("a", "c")


def test_a_handler_may_change_the_chain_while_it_is_walked() -> None:
    chain: HandlerChain[object] = HandlerChain()
    seen: list[object] = []

    def first() -> None:
        chain.remove(second)
        chain.add(third)

    def second() -> None:
        seen.append(second)

    def third() -> None:
        seen.append(third)

    chain.add(first)
    chain.add(second)
    for handler in chain.handlers:  # what the stream does per message
        seen.append(handler)
        if handler is first:
            first()
    assert seen == [first, second]  # the walk saw the chain as it was when it began
    assert chain.handlers == (first, third)
