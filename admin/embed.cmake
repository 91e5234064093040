# embed.cmake - turn admin/page.html into a C array (cmake -DIN=... -DOUT=... -P).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n\t" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from admin/page.html by admin/embed.cmake: do not edit. */\n"
                    "#include \"admin/page.h\"\n\n"
                    "const char admin_page_html[] = {\n\t${bytes}0x00};\n"
                    "const size_t admin_page_len = sizeof(admin_page_html) - 1;\n")
