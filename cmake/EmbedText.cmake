# gantry_embed_text(OUTPUT header NAMESPACE ns FILES a.sql b.sql ...)
# Generates a header with one `inline constexpr std::string_view kName` per file, named after
# the file in PascalCase (insert_session.sql -> kInsertSession; 0001_init.sql -> k0001Init).
# Optionally LIST_NAME: an array of {name, text} in the order given. Regenerated on change.
function(gantry_embed_text)
  cmake_parse_arguments(ARG "" "OUTPUT;NAMESPACE;LIST_NAME" "FILES" ${ARGN})
  add_custom_command(
    OUTPUT ${ARG_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ARG_OUTPUT} -DNAMESPACE=${ARG_NAMESPACE}
            -DLIST_NAME=${ARG_LIST_NAME} "-DFILES=${ARG_FILES}"
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedTextScript.cmake
    DEPENDS ${ARG_FILES} ${PROJECT_SOURCE_DIR}/cmake/EmbedTextScript.cmake
    COMMENT "Embedding ${ARG_NAMESPACE} text files"
    VERBATIM)
endfunction()
