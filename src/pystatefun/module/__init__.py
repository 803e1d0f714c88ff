"""Module YAML: load and validate the files that say which functions, ingresses and egresses a
pystatefun application has.

The format is StateFun 3.1+'s stream of ``kind``/``spec`` documents (``docs/module-yaml/``).
``load_module`` returns a ``Module`` of frozen, validated components, or raises
``pystatefun.errors.ModuleError`` naming the file, line and field at fault. Older StateFun
formats are converted by ``pystatefun.module.upgrade`` (``pystatefun module upgrade FILE``).
"""

from pystatefun.module._components import AwsCredentials as AwsCredentials
from pystatefun.module._components import AwsRegion as AwsRegion
from pystatefun.module._components import ColocatedEndpoint as ColocatedEndpoint
from pystatefun.module._components import EgressSpec as EgressSpec
from pystatefun.module._components import EmbeddedEndpoint as EmbeddedEndpoint
from pystatefun.module._components import Endpoint as Endpoint
from pystatefun.module._components import HttpEndpoint as HttpEndpoint
from pystatefun.module._components import IngressSpec as IngressSpec
from pystatefun.module._components import KafkaEgress as KafkaEgress
from pystatefun.module._components import KafkaIngress as KafkaIngress
from pystatefun.module._components import KafkaTopic as KafkaTopic
from pystatefun.module._components import KinesisEgress as KinesisEgress
from pystatefun.module._components import KinesisIngress as KinesisIngress
from pystatefun.module._components import KinesisStream as KinesisStream
from pystatefun.module._components import Location as Location
from pystatefun.module._components import Module as Module
from pystatefun.module._components import PlaygroundEgress as PlaygroundEgress
from pystatefun.module._components import PlaygroundIngress as PlaygroundIngress
from pystatefun.module._components import Transport as Transport
from pystatefun.module._dump import dump_module as dump_module
from pystatefun.module._loader import load_module as load_module

__all__ = [
    "AwsCredentials",
    "AwsRegion",
    "ColocatedEndpoint",
    "EgressSpec",
    "EmbeddedEndpoint",
    "Endpoint",
    "HttpEndpoint",
    "IngressSpec",
    "KafkaEgress",
    "KafkaIngress",
    "KafkaTopic",
    "KinesisEgress",
    "KinesisIngress",
    "KinesisStream",
    "Location",
    "Module",
    "PlaygroundEgress",
    "PlaygroundIngress",
    "Transport",
    "dump_module",
    "load_module",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("pystatefun.module._"):
        _obj.__module__ = __name__
del _name, _obj
