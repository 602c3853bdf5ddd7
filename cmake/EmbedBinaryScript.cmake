# cmake -DINPUT=file -DOUTPUT=file.cc -DNAMESPACE=ns -DNAME=kName -P EmbedBinaryScript.cmake
# Writes OUTPUT defining `extern const unsigned char NAME[]` with INPUT's bytes and
# `extern const size_t NAMESize`: binary data (a protobuf descriptor set) compiled in.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR size "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Lines of 32 bytes, so the generated file stays readable by a compiler's diagnostics.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/EmbedBinaryScript.cmake; do not edit.\n"
  "#include <cstddef>\n\nnamespace ${NAMESPACE} {\n"
  "extern const unsigned char ${NAME}[];\nextern const size_t ${NAME}Size;\n"
  "const unsigned char ${NAME}[] = {\n${bytes}\n};\n"
  "const size_t ${NAME}Size = ${size};\n}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
