"""Request and response bodies of the OpenAI-compatible routes. Every request
field is bounded, so a request is refused before it can allocate or compute
more than the bounds allow; bounds that depend on the model (context length,
vocabulary) are checked where the model is known."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from ..llm.sampling import MIN_REPEAT_PENALTY

MAX_TEXT = 1_000_000  # characters in one prompt or message
MAX_TOKENS = 1_000_000
MAX_STOPS = 16
MAX_ID = 256

Text = Annotated[str, Field(max_length=MAX_TEXT)]
StopText = Annotated[str, Field(min_length=1, max_length=256)]
TokenId = Annotated[int, Field(ge=0, le=10_000_000)]
ModelName = Annotated[str, Field(min_length=1, max_length=MAX_ID)]


class _Request(BaseModel):
    # Clients send fields this server does not use (user, parallel_tool_calls …); they are ignored.
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Request):
    include_usage: bool = False


# --- sampling shared by chat and completions --------------------------------
class _Sampling(_Request):
    model: ModelName
    max_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=1000, description="0: no limit (llama.cpp extension)")
    min_p: float = Field(0.0, ge=0.0, lt=1.0, description="llama.cpp extension")
    repeat_penalty: float = Field(1.0, ge=MIN_REPEAT_PENALTY, le=10.0, description="llama.cpp extension")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stop: StopText | Annotated[list[StopText], Field(max_length=MAX_STOPS)] | None = None
    n: int = Field(1, ge=1, le=16)
    cache_prompt: bool = Field(True, description="reuse a cached prompt prefix (llama.cpp extension); off gives "
                                                "replies independent of earlier requests, bit for bit")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


# --- chat ---------------------------------------------------------------------
class TextPart(_Request):
    type: Literal["text"]
    text: Text


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | Annotated[list[TextPart], Field(max_length=256)] | None = None
    name: Annotated[str, Field(max_length=MAX_ID)] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class JSONSchemaFormat(_Request):
    name: Annotated[str, Field(min_length=1, max_length=64)] = "response"
    description: Annotated[str, Field(max_length=4096)] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(_Request):
    type: Literal["text"]


class ResponseFormatJSONObject(_Request):
    type: Literal["json_object"]


class ResponseFormatJSONSchema(_Request):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[Union[ResponseFormatText, ResponseFormatJSONObject, ResponseFormatJSONSchema],
                           Field(discriminator="type")]


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=1024)]
    max_completion_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


# --- completions ----------------------------------------------------------------
class CompletionRequest(_Sampling):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=1)] \
        | Annotated[list[TokenId], Field(min_length=1, max_length=MAX_TOKENS)]
    max_tokens: int | None = Field(16, ge=0, le=MAX_TOKENS)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    response_format: ResponseFormat | None = None


# --- responses --------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int] | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """One streamed event of a chat completion; the last one before [DONE] may carry only usage."""
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "opentransformer"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- embeddings ---------------------------------------------------------------------
class EmbeddingRequest(_Request):
    model: ModelName
    input: Text | Annotated[list[Text], Field(min_length=1, max_length=256)] \
        | Annotated[list[TokenId], Field(min_length=1, max_length=MAX_TOKENS)] \
        | Annotated[list[Annotated[list[TokenId], Field(min_length=1, max_length=MAX_TOKENS)]],
                    Field(min_length=1, max_length=256)]
    encoding_format: Literal["float", "base64"] = "float"


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


# --- tokens ---------------------------------------------------------------------------
class TokenizeRequest(_Request):
    model: ModelName | None = None
    content: Text | None = Field(None, description="text to tokenize (llama.cpp's name)")
    prompt: Text | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=1024)] | None = None
    add_special: bool = True


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    max_model_len: int


class DetokenizeRequest(_Request):
    model: ModelName | None = None
    tokens: Annotated[list[TokenId], Field(max_length=MAX_TOKENS)]


class DetokenizeResponse(BaseModel):
    content: str


# --- vision ----------------------------------------------------------------------------
class ClassifyRequest(_Request):
    model: ModelName | None = None
    images: Annotated[list[Annotated[str, Field(min_length=1, max_length=20_000_000)]],
                      Field(min_length=1, max_length=32)]
    top_k: int = Field(5, ge=1, le=100)


class LabelProbability(BaseModel):
    label: str
    probability: float


class ImageClassification(BaseModel):
    index: int
    predictions: list[LabelProbability]


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[ImageClassification]


class Health(BaseModel):
    status: Literal["ok", "loading"]
