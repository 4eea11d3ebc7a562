namespace MLNetQuant.OnnxPtq;

/// <summary>How a text encoder's per-token hidden states become one sentence embedding, appended to the ONNX model as
/// ordinary nodes (so the saved .zip outputs the embedding and production needs no pooling code).</summary>
public enum SentencePooling
{
    /// <summary>No pooling: the model's outputs as they are.</summary>
    None,

    /// <summary>The mean over the real tokens (attention mask 1), as sentence-transformers' mean pooling (all-MiniLM-L6-v2 …).</summary>
    Mean,

    /// <summary>The first token's state ([CLS]), as BERT-style classifiers and some embedders (BGE …) pool.</summary>
    Cls,
}
