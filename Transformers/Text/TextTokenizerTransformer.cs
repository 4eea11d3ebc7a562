using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Tokenizers;

namespace MLNetQuant.Text;

/// <summary>Turns a text column into the three token columns a BERT-family ONNX model reads — <c>input_ids</c>,
/// <c>attention_mask</c> and <c>token_type_ids</c>, Int64 vectors of <see cref="MaxTokens"/> — with
/// Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> (WordPiece, the model's own vocabulary): [CLS] text [SEP],
/// truncated to MaxTokens, padded with 0 and mask 0.</summary>
/// <remarks>This step is not saved in the ML.NET .zip: ML.NET loads only its own components and custom mappings whose
/// state is code, WordPiece is expressible neither in ML.NET's built-in transforms nor in standard ONNX operators, and
/// ML.NET's loader registration (LoadableClass) is internal to ML.NET. Save the embedder — the transformer after this
/// step, whose .zip needs no MLNetQuant — and tokenize in production with <see cref="TextTokenizer.Create"/> (this
/// assembly and Microsoft.ML.Tokenizers) over the model's vocab.txt; <see cref="Encode"/> gives the same ids.</remarks>
public sealed class TextTokenizerTransformer : ITransformer
{
    /// <summary>The Int64 column of token ids.</summary>
    public const string InputIdsColumn = "input_ids";

    /// <summary>The Int64 column that is 1 on tokens and 0 on padding.</summary>
    public const string AttentionMaskColumn = "attention_mask";

    /// <summary>The Int64 column of segment ids (all 0: one sentence per row).</summary>
    public const string TokenTypeIdsColumn = "token_type_ids";

    private readonly MLContext _ml;
    private readonly BertTokenizer _tokenizer;
    private readonly IEstimator<ITransformer> _mappingEstimator;
    private readonly ITransformer _mapping;

    internal TextTokenizerTransformer(MLContext ml, string inputColumnName, string[] vocabulary, int maxTokens, bool lowerCase)
    {
        _ml = ml;
        (InputColumnName, MaxTokens, LowerCase) = (inputColumnName, maxTokens, lowerCase);
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', vocabulary)));
        _tokenizer = BertTokenizer.Create(stream, new BertOptions { LowerCaseBeforeTokenization = lowerCase });
        _mappingEstimator = BuildMapping();
        _mapping = _mappingEstimator.Fit(_ml.Data.LoadFromEnumerable(Array.Empty<TextRow>(), TextSchema()));
    }

    /// <summary>The text column read.</summary>
    public string InputColumnName { get; }

    /// <summary>Tokens per row, [CLS] and [SEP] included.</summary>
    public int MaxTokens { get; }

    /// <summary>Whether text is lower-cased before WordPiece (uncased models such as all-MiniLM-L6-v2).</summary>
    public bool LowerCase { get; }

    /// <summary>True: the step maps row by row (PredictionEngine works).</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The tokens of one text: ids, mask and segment ids, each <see cref="MaxTokens"/> long.</summary>
    public (long[] InputIds, long[] AttentionMask, long[] TokenTypeIds) Encode(string? text)
    {
        var ids = _tokenizer.EncodeToIds(text ?? "", MaxTokens, addSpecialTokens: true, out _, out _);
        var (inputIds, mask) = (new long[MaxTokens], new long[MaxTokens]);
        for (var i = 0; i < ids.Count; i++)
        {
            inputIds[i] = ids[i];
            mask[i] = 1;
        }
        return (inputIds, mask, new long[MaxTokens]);
    }

    /// <summary>The input schema plus the three token columns.</summary>
    /// <exception cref="ArgumentException">The input has no text column <see cref="InputColumnName"/>.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        CheckInput(inputSchema);
        return _mapping.GetOutputSchema(inputSchema);
    }

    /// <summary>Adds the three token columns.</summary>
    /// <exception cref="ArgumentException">The input has no text column <see cref="InputColumnName"/>.</exception>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input.Schema);
        return _mapping.Transform(input);
    }

    /// <summary>The row-by-row mapper (for PredictionEngine).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        CheckInput(inputSchema);
        return _mapping.GetRowToRowMapper(inputSchema);
    }

    private void CheckInput(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(InputColumnName);
        if (column is null || column.Value.Type is not TextDataViewType)
            throw new ArgumentException($"The input needs a text column '{InputColumnName}' to tokenize{(column is null ? "" : $"; it is {column.Value.Type}")}.", nameof(schema));
    }

    private sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    private sealed class TokenRow
    {
        public long[] InputIds { get; set; } = Array.Empty<long>();
        public long[] AttentionMask { get; set; } = Array.Empty<long>();
        public long[] TokenTypeIds { get; set; } = Array.Empty<long>();
    }

    /// <summary>The input shape plus the three token columns (for the estimator).</summary>
    internal SchemaShape GetOutputShape(SchemaShape inputSchema) => _mappingEstimator.GetOutputSchema(inputSchema);

    private SchemaDefinition TextSchema()
    {
        var input = SchemaDefinition.Create(typeof(TextRow));
        input[nameof(TextRow.Text)].ColumnName = InputColumnName;
        return input;
    }

    // ML.NET's CustomMapping does the row plumbing.
    private IEstimator<ITransformer> BuildMapping()
    {
        var output = SchemaDefinition.Create(typeof(TokenRow));
        foreach (var (member, name) in new[] { (nameof(TokenRow.InputIds), InputIdsColumn), (nameof(TokenRow.AttentionMask), AttentionMaskColumn),
                     (nameof(TokenRow.TokenTypeIds), TokenTypeIdsColumn) })
        {
            var column = output[member]; // looked up by its current name, so before renaming
            column.ColumnName = name;
            column.ColumnType = new VectorDataViewType(NumberDataViewType.Int64, MaxTokens);
        }
        return _ml.Transforms.CustomMapping<TextRow, TokenRow>((text, tokens) =>
        {
            (tokens.InputIds, tokens.AttentionMask, tokens.TokenTypeIds) = Encode(text.Text);
        }, contractName: null, TextSchema(), output);
    }

    /// <summary>Not supported: see the remarks. Throws, naming what to save instead.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "The text tokenizer step is not saved in an ML.NET .zip (ML.NET cannot load a WordPiece tokenizer it does not ship). " +
        "Save the embedder that follows it (its .zip needs no MLNetQuant) and tokenize in production with " +
        "MLNetQuant.Text.TextTokenizer.Create(vocabularyPath, maxTokens) over the model's vocab.txt.");
}
