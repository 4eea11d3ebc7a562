using Onnx;
using MLNetQuant.Training;

namespace MLNetQuant.OnnxPtq;

/// <summary>What every quantizer of an existing float ONNX model needs: the model, the columns that feed its inputs and
/// receive its outputs, the nodes to leave alone. <see cref="OnnxQuantizationOptions"/> (static: Observer, Naive) and
/// <see cref="DynamicQuantizationOptions"/> add their own.</summary>
public abstract class OnnxModelOptions
{
    private protected OnnxModelOptions()
    {
    }

    /// <summary>Path of the float ONNX model. Set this or <see cref="ModelBytes"/>.</summary>
    public string? ModelPath { get; set; }

    /// <summary>The float ONNX model's bytes. Set this or <see cref="ModelPath"/>.</summary>
    public byte[]? ModelBytes { get; set; }

    /// <summary>For a model with one input: the known-size vector column that feeds it (its values fill the input's
    /// shape row by row). Models with several inputs read the columns named like their inputs, or
    /// <see cref="InputColumns"/>.</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The column the model's first output is written to, unless <see cref="OutputColumns"/> chooses.</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Graph input name → the column that feeds it, where they differ. Each column is a known-size vector (or
    /// scalar) of the element type the input takes: Single, Double, Int64, Int32 or Boolean. Unmapped inputs read
    /// <see cref="FeatureColumnName"/> (one-input models) or the column of their own name.</summary>
    public IDictionary<string, string> InputColumns { get; set; } = new Dictionary<string, string>();

    /// <summary>Graph input name → its per-row shape (all dimensions after the batch), for inputs with symbolic
    /// dimensions (sequence length, image height and width) whose column does not carry them as
    /// VectorDataViewType dimensions. The quantized ONNX model stays dynamic; the ML.NET transformer feeds this
    /// shape.</summary>
    public IDictionary<string, long[]> InputShapes { get; set; } = new Dictionary<string, long[]>();

    /// <summary>Graph output name → column name, for each output to become a column. Empty (the default): the first
    /// output becomes <see cref="ScoreColumnName"/>.</summary>
    public IDictionary<string, string> OutputColumns { get; set; } = new Dictionary<string, string>();

    /// <summary>For a classifier whose first output holds one score per class (probabilities or logits): the key-typed
    /// column to add with the arg-max class, as ML.NET's multiclass trainers do (e.g. "PredictedLabel"). Null, the
    /// default, keeps the model's output as the score column only — an ONNX file does not say it is a classifier.</summary>
    public string? PredictedLabelColumnName { get; set; }

    /// <summary>With <see cref="PredictedLabelColumnName"/>: a key column of the data (e.g. from MapValueToKey) whose
    /// key values — one per class, in the model's output order — name the predicted keys. Null: the keys' values are
    /// the class indices 0…K-1 (UInt32).</summary>
    public string? LabelColumnName { get; set; }

    /// <summary>Node names left in float.</summary>
    public IList<string> ExcludedNodes { get; set; } = new List<string>();

    /// <summary>Weights: one int8 scale per output channel (true) or per tensor.</summary>
    public bool PerChannelWeights { get; set; } = true;

    /// <summary>ONNX op types to quantize (each options class lists what it takes and its default).</summary>
    public abstract IList<string> OpTypes { get; set; }

    /// <summary>For text encoders: pool the hidden states into one sentence embedding inside the model (mean over the
    /// real tokens, or the [CLS] token), L2-normalized by default. The pooled output, "sentence_embedding"
    /// [batch, hidden], replaces the model's outputs and becomes <see cref="ScoreColumnName"/> (or the column
    /// <see cref="OutputColumns"/> gives it): texts → tokenizer → quantized embedder → embedding column.</summary>
    public SentencePooling Pooling { get; set; } = SentencePooling.None;

    /// <summary>With <see cref="Pooling"/>: divide each embedding by its L2 norm (sentence-transformers' Normalize), so a
    /// dot product is the cosine similarity.</summary>
    public bool NormalizeEmbeddings { get; set; } = true;

    /// <summary>With mean <see cref="Pooling"/>: the model input holding the attention mask (1 on tokens, 0 on padding).</summary>
    public string AttentionMaskInput { get; set; } = "attention_mask";

    /// <summary>With <see cref="Pooling"/>: the graph output holding the per-token hidden states [batch, tokens,
    /// hidden]; null, the default, takes the first output (last_hidden_state in Hugging Face exports).</summary>
    public string? HiddenStateOutput { get; set; }

    /// <summary>For a BERT-family text encoder: read a text column and tokenize inside the model (see
    /// <see cref="TextInputOptions"/>) instead of reading token columns; null, the default, reads the token columns
    /// (e.g. from <c>TokenizeText</c>).</summary>
    public TextInputOptions? TextInput { get; set; }

    /// <summary>Receives progress reports (the calibration of Observer and of Int4 with GPTQ; Naive, Dynamic and Int4
    /// rounding to nearest read no data and report none).</summary>
    public IProgress<QuantizationProgress>? Progress { get; set; }

    /// <summary>The op types <see cref="OpTypes"/> may name.</summary>
    private protected abstract IReadOnlyCollection<string> SupportedOpTypes { get; }

    /// <summary>Checks every option; throws naming the first one at fault.</summary>
    internal virtual void Validate()
    {
        if ((ModelPath is null) == (ModelBytes is null))
            throw new ArgumentException("Set exactly one of ModelPath and ModelBytes.", ModelPath is null ? nameof(ModelBytes) : nameof(ModelPath));
        if (ModelPath is not null && !File.Exists(ModelPath))
            throw new FileNotFoundException($"No ONNX model at '{ModelPath}'.", ModelPath);
        if (!Enum.IsDefined(Pooling)) throw new ArgumentOutOfRangeException(nameof(Pooling), Pooling, "Pooling must be None, Mean or Cls.");
        if (Pooling == SentencePooling.Mean && string.IsNullOrWhiteSpace(AttentionMaskInput))
            throw new ArgumentException("Mean pooling needs AttentionMaskInput to name the attention-mask input.", nameof(AttentionMaskInput));
        ReadModel();
        if (string.IsNullOrWhiteSpace(FeatureColumnName)) throw new ArgumentException("FeatureColumnName must name a column.", nameof(FeatureColumnName));
        if (string.IsNullOrWhiteSpace(ScoreColumnName)) throw new ArgumentException("ScoreColumnName must name a column.", nameof(ScoreColumnName));
        if (PredictedLabelColumnName is not null && string.IsNullOrWhiteSpace(PredictedLabelColumnName))
            throw new ArgumentException("PredictedLabelColumnName must name a column, or be null for none.", nameof(PredictedLabelColumnName));
        if (LabelColumnName is not null && (string.IsNullOrWhiteSpace(LabelColumnName) || PredictedLabelColumnName is null))
            throw new ArgumentException("LabelColumnName only names the keys of PredictedLabelColumnName: set that too, and name a column.", nameof(LabelColumnName));
        if (InputColumns is null || InputColumns.Any(p => string.IsNullOrWhiteSpace(p.Value)))
            throw new ArgumentException("InputColumns must map input names to column names.", nameof(InputColumns));
        if (OutputColumns is null || OutputColumns.Any(p => string.IsNullOrWhiteSpace(p.Value)) ||
            OutputColumns.Values.Distinct().Count() != OutputColumns.Count)
            throw new ArgumentException("OutputColumns must map output names to distinct column names.", nameof(OutputColumns));
        if (InputShapes is null || InputShapes.Any(p => p.Value is null || p.Value.Any(d => d <= 0)))
            throw new ArgumentException("InputShapes must give each input a per-row shape of positive dimensions.", nameof(InputShapes));
        if (ExcludedNodes is null) throw new ArgumentNullException(nameof(ExcludedNodes));
        if (TextInput is { } text)
            Text.TextTokenizer.ReadVocabulary(text.VocabularyPath, text.TextColumnName, text.MaxTokens,
                ("TextInput.VocabularyPath", "TextInput.TextColumnName", "TextInput.MaxTokens"), nameof(TextInput));

        if (OpTypes is null || OpTypes.Count == 0) throw new ArgumentException("OpTypes must list at least one op type.", nameof(OpTypes));
        var unsupported = OpTypes.Where(o => !SupportedOpTypes.Contains(o)).ToArray();
        if (unsupported.Length > 0)
            throw new ArgumentException($"OpTypes: {string.Join(", ", unsupported)} not supported; use {string.Join(", ", SupportedOpTypes)}.", nameof(OpTypes));
    }

    /// <summary>How errors name the model: its path, or "ModelBytes".</summary>
    internal string ModelSource => ModelPath is not null ? $"'{ModelPath}'" : nameof(ModelBytes);

    /// <summary>The model of <see cref="ModelBytes"/> or <see cref="ModelPath"/>, parsed, with <see cref="Pooling"/>
    /// appended.</summary>
    /// <exception cref="ArgumentException">The bytes are not an ONNX model, or pooling does not fit it (the option is named).</exception>
    internal ModelProto ReadModel()
    {
        var model = ModelBytes is not null
            ? OnnxModelReader.Read(ModelBytes, nameof(ModelBytes))
            : OnnxModelReader.Read(File.ReadAllBytes(ModelPath!), nameof(ModelPath), ModelPath);
        if (Pooling != SentencePooling.None)
            MLNetQuant.Graph.SentencePoolingGraph.Append(model, Pooling, NormalizeEmbeddings, AttentionMaskInput, HiddenStateOutput, ModelSource);
        return model;
    }
}
