"""Many ensemble members' Diffrax terms as one term over a state with a leading member axis.

``jax.vmap`` of a whole ``diffeqsolve`` batches Diffrax's step loop: its loop state (the
Runge–Kutta stages, shaped [stages, ...] per member) is laid out member-first and transposed at
every step, and every branch of the loop body becomes a select. When all members step alike (a
fixed step), one solve whose state carries the member axis does the same arithmetic with one
loop: only the vector field and the control are vmapped, inside the step (``MemberTerm``)."""

from __future__ import annotations

from typing import Any

import diffrax
import equinox as eqx
import jax


class MemberTerm(diffrax.AbstractTerm):
    """``term`` holds every member's term (``size`` of them), each array leaf with a leading
    member axis; the
    state has that axis on every leaf; ``args`` (Diffrax's) has it on the leaves whose entry in
    ``args_axes`` (flattened, with ``args_treedef``) is 0 and is shared by all members where it
    is ``None`` (e.g. the input batch every member sees, which then enters one matrix product
    for all members)."""

    term: diffrax.AbstractTerm
    size: int = eqx.field(static=True)
    args_axes: tuple = eqx.field(static=True)
    args_treedef: Any = eqx.field(static=True)

    def _axes(self):
        return eqx.if_array(0), jax.tree.unflatten(self.args_treedef, self.args_axes)

    def vf(self, t, y, args):
        term_axes, args_axes = self._axes()
        return eqx.filter_vmap(
            lambda term, y, args: term.vf(t, y, args),
            in_axes=(term_axes, 0, args_axes),
            axis_size=self.size,
        )(self.term, y, args)

    def contr(self, t0, t1, **kwargs):
        return eqx.filter_vmap(lambda term: term.contr(t0, t1, **kwargs), axis_size=self.size)(
            self.term
        )

    def prod(self, vf, control):
        return eqx.filter_vmap(
            lambda term, vf, control: term.prod(vf, control), axis_size=self.size
        )(self.term, vf, control)

    def vf_prod(self, t, y, args, control):
        term_axes, args_axes = self._axes()
        return eqx.filter_vmap(
            lambda term, y, args, control: term.vf_prod(t, y, args, control),
            in_axes=(term_axes, 0, args_axes, 0),
            axis_size=self.size,
        )(self.term, y, args, control)

    def is_vf_expensive(self, t0, t1, y, args) -> bool:
        # A static property of the term's kind: asked of the first member.
        first = jax.tree.map(lambda a: a[0] if eqx.is_array(a) else a, (self.term, y))
        _, args_axes = self._axes()
        member_args = jax.tree.map(
            lambda a, axis: a[0] if axis == 0 else a,
            args,
            args_axes,
            is_leaf=lambda v: v is None,
        )
        return first[0].is_vf_expensive(t0, t1, first[1], member_args)


def member_axes(args: Any, batched: Any) -> tuple[tuple, Any]:
    """``MemberTerm``'s ``(args_axes, args_treedef)`` for ``args`` whose array leaves carry the
    member axis where ``batched`` (a tree of bools shaped like ``args``' array leaves) says so."""
    leaves, treedef = jax.tree.flatten(args, is_leaf=lambda v: v is None)
    flags = iter(jax.tree.leaves(batched))
    axes = tuple(0 if eqx.is_array(v) and next(flags) else None for v in leaves)
    return axes, treedef
