"""V0 and V1 layer formats (``layers`` field) upgraded to the current ``layer`` format."""
from ..errors import NetError


def upgrade_legacy_layers(net_param, source):
    if len(net_param.layers) == 0:
        return
    if len(net_param.layer) > 0:
        raise NetError(f"{source}: the net uses both 'layer' and the legacy 'layers' field; "
                       f"a net must use one of them")
    raise NetError(f"{source}: V0/V1 'layers' nets are not upgraded yet")
