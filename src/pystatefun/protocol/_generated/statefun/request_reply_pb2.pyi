from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Address(_message.Message):
    __slots__ = ("namespace", "type", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    type: str
    id: str
    def __init__(self, namespace: _Optional[str] = ..., type: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class TypedValue(_message.Message):
    __slots__ = ("typename", "has_value", "value")
    TYPENAME_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    typename: str
    has_value: bool
    value: bytes
    def __init__(self, typename: _Optional[str] = ..., has_value: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class ToFunction(_message.Message):
    __slots__ = ("invocation",)
    class PersistedValue(_message.Message):
        __slots__ = ("state_name", "state_value")
        STATE_NAME_FIELD_NUMBER: _ClassVar[int]
        STATE_VALUE_FIELD_NUMBER: _ClassVar[int]
        state_name: str
        state_value: TypedValue
        def __init__(self, state_name: _Optional[str] = ..., state_value: _Optional[_Union[TypedValue, _Mapping]] = ...) -> None: ...
    class Invocation(_message.Message):
        __slots__ = ("caller", "argument")
        CALLER_FIELD_NUMBER: _ClassVar[int]
        ARGUMENT_FIELD_NUMBER: _ClassVar[int]
        caller: Address
        argument: TypedValue
        def __init__(self, caller: _Optional[_Union[Address, _Mapping]] = ..., argument: _Optional[_Union[TypedValue, _Mapping]] = ...) -> None: ...
    class InvocationBatchRequest(_message.Message):
        __slots__ = ("target", "state", "invocations")
        TARGET_FIELD_NUMBER: _ClassVar[int]
        STATE_FIELD_NUMBER: _ClassVar[int]
        INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
        target: Address
        state: _containers.RepeatedCompositeFieldContainer[ToFunction.PersistedValue]
        invocations: _containers.RepeatedCompositeFieldContainer[ToFunction.Invocation]
        def __init__(self, target: _Optional[_Union[Address, _Mapping]] = ..., state: _Optional[_Iterable[_Union[ToFunction.PersistedValue, _Mapping]]] = ..., invocations: _Optional[_Iterable[_Union[ToFunction.Invocation, _Mapping]]] = ...) -> None: ...
    INVOCATION_FIELD_NUMBER: _ClassVar[int]
    invocation: ToFunction.InvocationBatchRequest
    def __init__(self, invocation: _Optional[_Union[ToFunction.InvocationBatchRequest, _Mapping]] = ...) -> None: ...

class FromFunction(_message.Message):
    __slots__ = ("invocation_result", "incomplete_invocation_context")
    class PersistedValueMutation(_message.Message):
        __slots__ = ("mutation_type", "state_name", "state_value")
        class MutationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            DELETE: _ClassVar[FromFunction.PersistedValueMutation.MutationType]
            MODIFY: _ClassVar[FromFunction.PersistedValueMutation.MutationType]
        DELETE: FromFunction.PersistedValueMutation.MutationType
        MODIFY: FromFunction.PersistedValueMutation.MutationType
        MUTATION_TYPE_FIELD_NUMBER: _ClassVar[int]
        STATE_NAME_FIELD_NUMBER: _ClassVar[int]
        STATE_VALUE_FIELD_NUMBER: _ClassVar[int]
        mutation_type: FromFunction.PersistedValueMutation.MutationType
        state_name: str
        state_value: TypedValue
        def __init__(self, mutation_type: _Optional[_Union[FromFunction.PersistedValueMutation.MutationType, str]] = ..., state_name: _Optional[str] = ..., state_value: _Optional[_Union[TypedValue, _Mapping]] = ...) -> None: ...
    class Invocation(_message.Message):
        __slots__ = ("target", "argument")
        TARGET_FIELD_NUMBER: _ClassVar[int]
        ARGUMENT_FIELD_NUMBER: _ClassVar[int]
        target: Address
        argument: TypedValue
        def __init__(self, target: _Optional[_Union[Address, _Mapping]] = ..., argument: _Optional[_Union[TypedValue, _Mapping]] = ...) -> None: ...
    class DelayedInvocation(_message.Message):
        __slots__ = ("is_cancellation_request", "cancellation_token", "delay_in_ms", "target", "argument")
        IS_CANCELLATION_REQUEST_FIELD_NUMBER: _ClassVar[int]
        CANCELLATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
        DELAY_IN_MS_FIELD_NUMBER: _ClassVar[int]
        TARGET_FIELD_NUMBER: _ClassVar[int]
        ARGUMENT_FIELD_NUMBER: _ClassVar[int]
        is_cancellation_request: bool
        cancellation_token: str
        delay_in_ms: int
        target: Address
        argument: TypedValue
        def __init__(self, is_cancellation_request: _Optional[bool] = ..., cancellation_token: _Optional[str] = ..., delay_in_ms: _Optional[int] = ..., target: _Optional[_Union[Address, _Mapping]] = ..., argument: _Optional[_Union[TypedValue, _Mapping]] = ...) -> None: ...
    class EgressMessage(_message.Message):
        __slots__ = ("egress_namespace", "egress_type", "argument")
        EGRESS_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
        EGRESS_TYPE_FIELD_NUMBER: _ClassVar[int]
        ARGUMENT_FIELD_NUMBER: _ClassVar[int]
        egress_namespace: str
        egress_type: str
        argument: TypedValue
        def __init__(self, egress_namespace: _Optional[str] = ..., egress_type: _Optional[str] = ..., argument: _Optional[_Union[TypedValue, _Mapping]] = ...) -> None: ...
    class InvocationResponse(_message.Message):
        __slots__ = ("state_mutations", "outgoing_messages", "delayed_invocations", "outgoing_egresses")
        STATE_MUTATIONS_FIELD_NUMBER: _ClassVar[int]
        OUTGOING_MESSAGES_FIELD_NUMBER: _ClassVar[int]
        DELAYED_INVOCATIONS_FIELD_NUMBER: _ClassVar[int]
        OUTGOING_EGRESSES_FIELD_NUMBER: _ClassVar[int]
        state_mutations: _containers.RepeatedCompositeFieldContainer[FromFunction.PersistedValueMutation]
        outgoing_messages: _containers.RepeatedCompositeFieldContainer[FromFunction.Invocation]
        delayed_invocations: _containers.RepeatedCompositeFieldContainer[FromFunction.DelayedInvocation]
        outgoing_egresses: _containers.RepeatedCompositeFieldContainer[FromFunction.EgressMessage]
        def __init__(self, state_mutations: _Optional[_Iterable[_Union[FromFunction.PersistedValueMutation, _Mapping]]] = ..., outgoing_messages: _Optional[_Iterable[_Union[FromFunction.Invocation, _Mapping]]] = ..., delayed_invocations: _Optional[_Iterable[_Union[FromFunction.DelayedInvocation, _Mapping]]] = ..., outgoing_egresses: _Optional[_Iterable[_Union[FromFunction.EgressMessage, _Mapping]]] = ...) -> None: ...
    class ExpirationSpec(_message.Message):
        __slots__ = ("mode", "expire_after_millis")
        class ExpireMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            NONE: _ClassVar[FromFunction.ExpirationSpec.ExpireMode]
            AFTER_WRITE: _ClassVar[FromFunction.ExpirationSpec.ExpireMode]
            AFTER_INVOKE: _ClassVar[FromFunction.ExpirationSpec.ExpireMode]
        NONE: FromFunction.ExpirationSpec.ExpireMode
        AFTER_WRITE: FromFunction.ExpirationSpec.ExpireMode
        AFTER_INVOKE: FromFunction.ExpirationSpec.ExpireMode
        MODE_FIELD_NUMBER: _ClassVar[int]
        EXPIRE_AFTER_MILLIS_FIELD_NUMBER: _ClassVar[int]
        mode: FromFunction.ExpirationSpec.ExpireMode
        expire_after_millis: int
        def __init__(self, mode: _Optional[_Union[FromFunction.ExpirationSpec.ExpireMode, str]] = ..., expire_after_millis: _Optional[int] = ...) -> None: ...
    class PersistedValueSpec(_message.Message):
        __slots__ = ("state_name", "expiration_spec", "type_typename")
        STATE_NAME_FIELD_NUMBER: _ClassVar[int]
        EXPIRATION_SPEC_FIELD_NUMBER: _ClassVar[int]
        TYPE_TYPENAME_FIELD_NUMBER: _ClassVar[int]
        state_name: str
        expiration_spec: FromFunction.ExpirationSpec
        type_typename: str
        def __init__(self, state_name: _Optional[str] = ..., expiration_spec: _Optional[_Union[FromFunction.ExpirationSpec, _Mapping]] = ..., type_typename: _Optional[str] = ...) -> None: ...
    class IncompleteInvocationContext(_message.Message):
        __slots__ = ("missing_values",)
        MISSING_VALUES_FIELD_NUMBER: _ClassVar[int]
        missing_values: _containers.RepeatedCompositeFieldContainer[FromFunction.PersistedValueSpec]
        def __init__(self, missing_values: _Optional[_Iterable[_Union[FromFunction.PersistedValueSpec, _Mapping]]] = ...) -> None: ...
    INVOCATION_RESULT_FIELD_NUMBER: _ClassVar[int]
    INCOMPLETE_INVOCATION_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    invocation_result: FromFunction.InvocationResponse
    incomplete_invocation_context: FromFunction.IncompleteInvocationContext
    def __init__(self, invocation_result: _Optional[_Union[FromFunction.InvocationResponse, _Mapping]] = ..., incomplete_invocation_context: _Optional[_Union[FromFunction.IncompleteInvocationContext, _Mapping]] = ...) -> None: ...
