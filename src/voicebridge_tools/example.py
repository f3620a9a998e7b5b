"""A worked example of an operator's tool: `VOICEBRIDGE_TOOLS=voicebridge_tools.example`.

Copy it to a module of your own in this folder and call your systems instead of returning a fixed answer.
"""

from __future__ import annotations

from voicebridge.tools import tool


@tool(label="Looking up the order")
async def order_status(order_id: str, detailed: bool = False) -> dict:
    """Look up where a customer's order is.

    Args:
        order_id: the order number the customer reads out.
        detailed: true when the customer asks for every step of the delivery.
    """
    status = {"order_id": order_id, "status": "shipped"}
    if detailed:
        status["steps"] = ["ordered", "packed", "shipped"]
    return status
